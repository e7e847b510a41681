"""Drift between the registry and what source pages show: unit rules, then the real journey
through `check` and `drift` against a loopback page."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import registry_with
from servers import HttpServer, page

from monitor.cli import main
from monitor.drift import find_drift
from monitor.extract import extract_contacts
from monitor.model import Finding, ProbeResult

CHANNELS = [
    {"id": "hotline", "kind": "phone", "phone": "8 800 555-89-82", "published_on": ["contacts"]},
    {
        "id": "old-hotline",
        "kind": "phone",
        "phone": "8 (800) 234-70-00",
        "status": "deprecated",
        "replaced_by": "chat",
    },
    {
        "id": "police",
        "kind": "phone",
        "phone": "+7 958 400-00-05 доб. 76077",
        "published_on": ["contacts"],
    },
    {"id": "b2b", "kind": "email", "email": "B2B@acme-torg.ru", "published_on": ["contacts"]},
    {
        "id": "chat",
        "kind": "chat",
        "url": "https://acme.test/my/messenger",
        "published_on": ["contacts"],
    },
]
SOURCES = [{"id": "contacts", "url": "https://acme.test/contacts"}]


def scan(html: str) -> dict[tuple[str, str], ProbeResult]:
    contacts = extract_contacts(html, "RU", html=True, base_url="https://acme.test/contacts")
    return {("acme", "contacts"): ProbeResult(True, contacts=contacts)}


def drift(html: str) -> list[Finding]:
    return find_drift(registry_with(CHANNELS, SOURCES), scan(html))


FULL_PAGE = """<p>8 800 555-89-82</p><p>+7 958 400-00-05 доб. 76077</p>
<p><a href="mailto:b2b@acme-torg.ru">b2b@acme-torg.ru</a></p><a href="/my/messenger/">Чат</a>"""


def test_no_findings_when_page_shows_exactly_the_registry():
    """A page showing every channel published on it, and nothing else, has no findings."""
    assert drift(FULL_PAGE) == []


def test_deprecated_published_when_page_shows_old_number_in_another_format():
    """+7 800 234 70 00 is the deprecated 8 (800) 234-70-00: flagged with the raw evidence."""
    assert drift(FULL_PAGE + "<p>Старый номер: +7 800 234 70 00</p>") == [
        Finding(
            "deprecated_published",
            "acme",
            "contacts",
            "old-hotline",
            "+78002347000",
            "+7 800 234 70 00",
        ),
    ]


def test_unregistered_published_when_page_shows_unknown_number_and_address():
    """A phone and an e-mail no channel has are reported with what the page shows."""
    found = drift(FULL_PAGE + "<p>8 (495) 215-29-94, sales@acme-torg.ru</p>")
    assert found == [
        Finding(
            "unregistered_published", "acme", "contacts", None, "+74952152994", "8 (495) 215-29-94"
        ),
        Finding(
            "unregistered_published",
            "acme",
            "contacts",
            None,
            "sales@acme-torg.ru",
            "sales@acme-torg.ru",
        ),
    ]


def test_active_missing_when_page_no_longer_shows_a_published_channel():
    """Phones, e-mails and chat links listed in published_on must be on the page."""
    found = drift("<p>+7 958 400-00-05 доб. 76077</p>")
    assert [(f.type, f.channel, f.contact) for f in found] == [
        ("active_missing", "b2b", "b2b@acme-torg.ru"),
        ("active_missing", "chat", "https://acme.test/my/messenger"),
        ("active_missing", "hotline", "+78005558982"),
    ]


def test_extension_mismatch_is_another_number_when_both_sides_have_one():
    """доб. 1 on the page is not the registry's доб. 76077: unregistered, and missing."""
    found = drift(FULL_PAGE.replace("76077", "1"))
    assert ("unregistered_published", "+79584000005;ext=1") in {(f.type, f.contact) for f in found}
    assert ("active_missing", "police") in {(f.type, f.channel) for f in found}


def test_main_number_is_another_contact_when_registry_lists_an_extension():
    """The line's main number is not its доб. 76077: the page showing only the main number
    publishes an unregistered contact and misses the registered one."""
    found = drift(FULL_PAGE.replace(" доб. 76077", ""))
    assert {(f.type, f.channel, f.contact) for f in found} == {
        ("unregistered_published", None, "+79584000005"),
        ("active_missing", "police", "+79584000005;ext=76077"),
    }


def test_current_extension_not_deprecated_when_old_main_number_is_deprecated():
    """A deprecated main number does not make its current extension deprecated."""
    channels = [
        *CHANNELS,
        {"id": "police-old", "kind": "phone", "phone": "+7 958 400-00-05", "status": "deprecated"},
    ]
    found = find_drift(registry_with(channels, SOURCES), scan(FULL_PAGE))
    assert found == []


def test_deprecated_extension_flagged_when_shown_next_to_the_current_one():
    """An old extension of the same number, shown beside the current one, is flagged alone."""
    channels = [
        *CHANNELS,
        {
            "id": "police-old",
            "kind": "phone",
            "phone": "+7 958 400-00-05 доб. 100",
            "status": "deprecated",
        },
    ]
    page_html = FULL_PAGE + "<p>Прежний: +7 958 400-00-05 (доб. 100)</p>"
    found = find_drift(registry_with(channels, SOURCES), scan(page_html))
    assert [(f.type, f.channel, f.contact) for f in found] == [
        ("deprecated_published", "police-old", "+79584000005;ext=100"),
    ]


def test_source_unreachable_when_scan_failed():
    """A failed scan is one finding with its reason, and no active_missing noise."""
    registry = registry_with(CHANNELS, SOURCES)
    failed = ProbeResult(False, "http_status", "status 503")
    assert find_drift(registry, {("acme", "contacts"): failed}) == [
        Finding("source_unreachable", "acme", "contacts", evidence="http_status: status 503"),
    ]


# --- the whole journey: check and drift against a page on loopback ------------------------


def write_registry(tmp_path: Path, source_url: str, dns_port: int, extra: Any = ()) -> Path:
    data = {
        "version": 1,
        "defaults": {"timeout": "3s", "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port}},
        "organizations": [
            {
                "id": "ozon",
                "sources": [{"id": "help-contacts", "url": source_url}],
                "channels": [
                    {
                        "id": "bank-hotline",
                        "kind": "phone",
                        "phone": "8 800 555-89-82",
                        "published_on": ["help-contacts"],
                    },
                    {
                        "id": "marketplace-hotline-old",
                        "kind": "phone",
                        "phone": "8 (800) 234-70-00",
                        "status": "deprecated",
                    },
                    *extra,
                ],
            }
        ],
    }
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_check_exits_1_with_evidence_when_deprecated_number_is_published(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`check --format json` reports deprecated_published with the page's wording, exit 1."""
    http_server.routes["/contacts"] = page(
        "<p>Банк: 8 800 555-89-82</p><footer>Маркетплейс: +7 (800) 234 7000</footer>"
    )
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port)
    assert main(["check", "--config", str(config), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == [
        {
            "type": "deprecated_published",
            "org": "ozon",
            "channel": "marketplace-hotline-old",
            "source": "help-contacts",
            "contact": "+78002347000",
            "evidence": "+7 (800) 234 7000",
        }
    ]
    # Phone lines only checked against the numbering plan are neither up nor down.
    assert {r["channel"]: r["success"] for r in report["results"]} == {
        "bank-hotline": None,  # numbering checks: never up or down
        "marketplace-hotline-old": None,
    }


def test_check_exits_0_when_everything_is_up_and_clean(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """All active channels up and nothing deprecated published: exit 0, table output."""
    http_server.routes["/contacts"] = page("<p>Банк: 8 800 555-89-82</p>")
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port)
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "0/0 channels up (2 not measured: phone lines not dialled" in out
    assert "; 1 of 1 sources read" in out
    assert "number valid · not dialled" in out
    assert "no drift findings" in out


def test_check_exits_1_when_an_active_channel_is_down(
    http_server: HttpServer,
    dns_port: int,
    tmp_path: Path,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
):
    """A refused web channel is down with its reason, and check exits 1."""
    http_server.routes["/contacts"] = page("<p>8 800 555-89-82</p>")
    site = {"id": "site", "kind": "web", "url": f"http://127.0.0.1:{closed_port}/"}
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port, [site])
    assert main(["check", "--config", str(config), "--format", "json"]) == 1
    results = {r["channel"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert (results["site"]["success"], results["site"]["reason"]) == (False, "connect_refused")


def test_check_probes_only_named_channels_when_channel_is_given(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """--channel limits results and findings to the named channel."""
    http_server.routes["/contacts"] = page("<p>8 800 555-89-82, 8 800 234-70-00, x@y.test</p>")
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port)
    args = ["check", "--config", str(config), "--format", "json", "--channel", "ozon/bank-hotline"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["channel"] for r in report["results"]] == ["bank-hotline"]
    assert report["findings"] == []


def test_check_exits_2_when_channel_is_unknown(
    tmp_path: Path, dns_port: int, capsys: pytest.CaptureFixture[str]
):
    """An unknown --channel is a usage error."""
    config = write_registry(tmp_path, "http://127.0.0.1:1/", dns_port)
    assert main(["check", "--config", str(config), "--channel", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "contact-monitor: no channel 'nope' in the registry"


def test_drift_exits_1_and_lists_findings_when_page_drifted(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`drift` scans sources only and exits 1 on findings."""
    http_server.routes["/contacts"] = page("<p>8 (800) 234-70-00</p>")
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port)
    assert main(["drift", "--config", str(config), "--format", "json"]) == 1
    types = sorted(f["type"] for f in json.loads(capsys.readouterr().out)["findings"])
    assert types == ["active_missing", "deprecated_published"]


def test_drift_exits_0_when_page_matches(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """No findings: exit 0 and says so."""
    http_server.routes["/contacts"] = page("<p>8 800 555-89-82</p>")
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port)
    assert main(["drift", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "no drift findings"


def test_source_unreachable_reported_when_page_answers_404(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A missing page is a source_unreachable finding with the status."""
    config = write_registry(tmp_path, http_server.url("/gone"), dns_port)
    assert main(["drift", "--config", str(config), "--format", "json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["type"], finding["evidence"]) == (
        "source_unreachable",
        "http_status: status 404",
    )


@pytest.mark.parametrize("coding", ["identity", "gzip"])
def test_long_page_scanned_on_its_first_bytes_when_it_passes_max_body_bytes(
    http_server: HttpServer,
    dns_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    coding: str,
):
    """A page longer than the source's max_body_bytes is read up to it, not refused: the
    deprecated number near the top is a finding, and the active number past the cap is not
    reported missing, since that part of the page was never read."""
    html = (
        "<p>Старый номер: 8 (800) 234-70-00</p>" + "<p>текст</p>" * 2000 + "<p>8 800 555-89-82</p>"
    ).encode()
    body, headers = (
        (gzip.compress(html), {"Content-Encoding": "gzip"})
        if coding == "gzip"
        else (
            html,
            {},
        )
    )
    http_server.routes["/long"] = page(body, headers=headers)
    config = write_registry(tmp_path, http_server.url("/long"), dns_port)
    data = yaml.safe_load(config.read_text())
    data["organizations"][0]["sources"][0]["max_body_bytes"] = 4096
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    assert main(["drift", "--config", str(config), "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["type"], f["channel"]) for f in findings] == [
        ("deprecated_published", "marketplace-hotline-old")
    ]


def test_extract_reads_url_when_source_is_http(
    http_server: HttpServer, capsys: pytest.CaptureFixture[str]
):
    """`extract URL` fetches the page and prints its contacts."""
    http_server.routes["/c"] = page("<p>GR@ozon.ru</p>")
    assert main(["extract", http_server.url("/c"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["emails"] == [
        {"address": "gr@ozon.ru", "raw": "GR@ozon.ru"}
    ]


def test_extract_exits_2_when_url_is_unreachable(
    closed_port: int, capsys: pytest.CaptureFixture[str]
):
    """An unreachable URL is one clear line and exit 2."""
    assert main(["extract", f"http://127.0.0.1:{closed_port}/"]) == 2
    assert "connect_refused" in capsys.readouterr().err


# --- issue 13: findings as a visitor would judge them, on loopback pages -------------------

DEPRECATED_SHOWN = {
    "after <br> and a word": "<p>Маркетплейс: 8 (800) 234-70-00<br>Звоните круглосуточно</p>",
    "in list items": "<ul><li>8 (800) 234-70-00</li><li>Бесплатно</li></ul>",
    "in thin spaces": "<p>Старая линия 8\u2009800\u2009234\u201170\u201100</p>",
    "in narrow no-break spaces": "<p>+7\u202f800\u202f234\u202f70\u202f00</p>",
    "with soft hyphens": "<p>8 800 234&shy;-70&shy;-00</p>",
    "behind a label": "<p>Открыть счёт — 8 800 234-70-00</p>",
    "behind a card label": "<p>Блокировка карты: 8-800-234-70-00</p>",
    "before a town": "<p>8 (800) 234-70-00 г. Москва</p>",
    "in JSON-LD with a trailing comma": (
        '<script type="application/ld+json">{"telephone": "+7 800 234-70-00",}</script>'
    ),
}


def drift_json(
    http_server: HttpServer,
    dns_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: str | bytes,
    extra: Any = (),
    content_type: str = "text/html; charset=utf-8",
) -> list[dict[str, Any]]:
    http_server.routes["/contacts"] = page(body, content_type=content_type)
    config = write_registry(tmp_path, http_server.url("/contacts"), dns_port, extra)
    main(["drift", "--config", str(config), "--format", "json"])
    return json.loads(capsys.readouterr().out)["findings"]


@pytest.mark.parametrize("shown", DEPRECATED_SHOWN.values(), ids=DEPRECATED_SHOWN.keys())
def test_deprecated_published_when_page_writes_the_old_number_as_real_pages_do(
    shown: str,
    http_server: HttpServer,
    dns_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """The switched-off number is flagged however the page typesets it."""
    body = f"<p>Банк: 8 800 555-89-82</p>{shown}"
    findings = drift_json(http_server, dns_port, tmp_path, capsys, body)
    assert [(f["type"], f["channel"]) for f in findings] == [
        ("deprecated_published", "marketplace-hotline-old")
    ]


def test_no_deprecated_published_when_old_number_is_hidden(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A number under display:none, hidden or <template> is not published."""
    body = (
        "<p>Банк: 8 800 555-89-82</p><p style='display:none'>8 (800) 234-70-00</p>"
        "<div hidden>8 (800) 234-70-00</div><template>8 (800) 234-70-00</template>"
    )
    assert drift_json(http_server, dns_port, tmp_path, capsys, body) == []


POLICE = {
    "id": "police",
    "kind": "phone",
    "phone": "+7 958 400-00-05 доб. 76077",
    "published_on": ["help-contacts"],
}
POLICE_OLD = {
    "id": "police-old",
    "kind": "phone",
    "phone": "+7 958 400-00-05 доб. 100",
    "status": "deprecated",
}
POLICE_MAIN_OLD = {
    "id": "police-main-old",
    "kind": "phone",
    "phone": "+7 958 400-00-05",
    "status": "deprecated",
}


def test_no_deprecated_published_when_page_shows_only_the_current_extension(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """доб. 76077 is not the deprecated доб. 100 nor the deprecated main number."""
    body = "<p>8 800 555-89-82</p><p>Для запросов: +7 958 400-00-05 (доб. 76077)</p>"
    extra = [POLICE, POLICE_OLD, POLICE_MAIN_OLD]
    assert drift_json(http_server, dns_port, tmp_path, capsys, body, extra) == []


def test_only_old_extension_flagged_when_shown_next_to_the_current_one(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The current extension beside a deprecated one: one finding, for the old one."""
    body = "<p>8 800 555-89-82</p><p>+7 958 400-00-05, доб. 76077<br>прежний: доб. 100</p>"
    body += '<a href="tel:+79584000005;ext=100">старый</a>'
    findings = drift_json(
        http_server, dns_port, tmp_path, capsys, body, [POLICE, POLICE_OLD, POLICE_MAIN_OLD]
    )
    assert [(f["type"], f["channel"], f["contact"]) for f in findings] == [
        ("deprecated_published", "police-old", "+79584000005;ext=100")
    ]


def cfemail(address: str, key: int = 0x5A) -> str:
    """Cloudflare's encoding: the key byte, then each byte of the address XOR the key."""
    return f"{key:02x}" + "".join(f"{byte ^ key:02x}" for byte in address.encode())


REGISTERED_EMAIL = {
    "id": "b2b",
    "kind": "email",
    "email": "B2B@ozon-torg.ru",
    "smtp": "off",
    "published_on": ["help-contacts"],
}


@pytest.mark.parametrize(
    "shown",
    [
        '<span class="__cf_email__" data-cfemail="{}">[email&#160;protected]</span>',
        '<a href="/cdn-cgi/l/email-protection#{}">Написать</a>',
        "<!-- {} --> b2b [at] ozon-torg [dot] ru",
        "<!-- {} --> B2B(собака)OZON-TORG.RU",
        '<!-- {} --><a href="mailto:sales@ozon-torg.ru,b2b@ozon-torg.ru?subject=B2B">Пишите</a>',
        "<!-- {} -->e-mail: b2b@ozon-torg.ru<br>sales@ozon-torg.ru",
    ],
    ids=["data-cfemail", "email-protection link", "[at] [dot]", "(собака)", "mailto list", "<br>"],
)
def test_no_active_missing_when_registered_email_is_written_as_pages_write_it(
    shown: str,
    http_server: HttpServer,
    dns_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """An address behind Cloudflare's protection, obfuscated or in a mailto: list is shown."""
    body = f"<p>8 800 555-89-82</p><p>B2B: {shown.format(cfemail('b2b@ozon-torg.ru'))}</p>"
    findings = drift_json(http_server, dns_port, tmp_path, capsys, body, [REGISTERED_EMAIL])
    # No active_missing for b2b@; the unregistered sales@ beside it may be reported.
    assert [(f["type"], f["contact"]) for f in findings] in (
        [],
        [("unregistered_published", "sales@ozon-torg.ru")],
    )


def test_no_active_missing_when_registered_idn_email_is_on_a_windows_1251_page(
    http_server: HttpServer, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A <meta charset> after a long <style> decides the text; the IDN address matches its
    xn-- form in the registry."""
    style = "<style>" + "p{margin:0}\n" * 500 + "</style>"
    body = (
        f'<html><head>{style}<meta charset="windows-1251"></head><body>'
        "<p>Банк: 8 800 555-89-82</p><p>Почта: опт@озон-торг.рф</p></body></html>"
    ).encode("cp1251")
    email = {**REGISTERED_EMAIL, "email": "опт@xn----ftbkydbcqq.xn--p1ai"}
    findings = drift_json(
        http_server, dns_port, tmp_path, capsys, body, [email], content_type="text/html"
    )
    assert findings == []


@pytest.mark.parametrize(
    "hint",
    [
        "Например: ivan.petrov@example.com",
        "<label>E-mail <input placeholder='you@example.org'></label> name@company.test",
        "<code>noreply@site.example</code>, <img src='/i/logo@2x.png'>",
        "Формат номера: +7 (999) 999-99-99 или +7 (___) ___-__-__",
    ],
)
def test_no_unregistered_published_when_page_shows_placeholders(
    hint: str,
    http_server: HttpServer,
    dns_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """Reserved domains, asset names and input masks are not contacts nobody registered."""
    body = f"<p>Банк: 8 800 555-89-82</p><p>{hint}</p>"
    assert drift_json(http_server, dns_port, tmp_path, capsys, body) == []
