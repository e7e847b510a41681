"""Hardening: hostile targets, DNS and SMTP servers, and pages, each a real loopback peer.
Every probe must end within its timeout with the right reason and read at most its cap.
Each case adds a row to the hardening table (build/hardening.md)."""

from __future__ import annotations

import datetime
import random
import resource
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hostile_peers as peers
import pytest
import trustme
from conftest import MAIL_DOMAIN, server_context
from servers import HttpServer, page, redirect

from monitor.config import EmailChannel, Source, WebChannel
from monitor.model import ProbeResult
from monitor.probers import ProbeContext, probe_http, probe_mx, probe_smtp, probe_source

TIMEOUT = 2.0
CAP = 1024 * 1024


def record(
    report: list[dict[str, Any]],
    area: str,
    case: str,
    expected: set[str],
    result: ProbeResult,
    extra: dict[str, Any] | None = None,
) -> None:
    observed = result.reason or "success"
    report.append(
        {
            "area": area,
            "case": case,
            "expected": " or ".join(sorted(expected)),
            "observed": observed,
            "seconds": f"{result.duration_seconds:.2f}",
            **(extra or {}),
        }
    )
    assert observed in expected, result
    assert result.duration_seconds < TIMEOUT + 1.0, result


def web(url: str, **expect: Any) -> WebChannel:
    return WebChannel.model_validate(
        {"id": "hostile", "kind": "web", "url": url, "timeout": TIMEOUT, "expect": expect}
    )


# --- HTTP: raw misbehaving peers ------------------------------------------------------------

RAW_CASES = [
    ("slow headers (1 byte/s)", peers.slow_headers, {"timeout"}),
    ("slow body (1 byte/s)", peers.slow_body, {"timeout"}),
    ("endless body without length", peers.endless_body, {"too_large"}),
    ("gzip bomb (1 GiB of zeros in 1 MB)", peers.gzip_bomb, {"too_large"}),
    # httpcore reads at most 100 KiB of headers: under it the answer is read, over it refused.
    ("100 kB header line", peers.long_header(100_000), {"success"}),
    ("1 MB header line", peers.long_header(1_000_000), {"http_protocol"}),
    ("connection reset after the request", peers.reset, {"connect_reset", "http_protocol"}),
    ("non-HTTP garbage", peers.garbage, {"http_protocol"}),
]


@pytest.mark.parametrize(
    ("case", "behaviour", "expected"), RAW_CASES, ids=[c[0] for c in RAW_CASES]
)
async def test_http_probe_ends_with_reason_when_peer_is_hostile(
    case: str,
    behaviour: Callable[..., None],
    expected: set[str],
    raw_server: Any,
    ctx: ProbeContext,
    hardening_report: list[dict[str, Any]],
):
    """Each hostile HTTP peer ends the probe within its timeout, with its reason, capped."""
    if behaviour is peers.gzip_bomb:
        peers.gzip_bomb_body()  # built before the clock starts
    server = raw_server(behaviour)
    # A body pattern makes the probe decode the body, as a page check does.
    channel = web(f"http://127.0.0.1:{server.port}/", max_body_bytes=CAP, body_regex=".")
    result = await probe_http(channel, ctx)
    read = result.details.get("body_bytes_read")
    record(
        hardening_report,
        "HTTP",
        case,
        expected,
        result,
        {"bytes": read if read is not None else "–"},
    )
    if read is not None:
        assert read <= CAP + 1


async def test_http_probe_ends_at_timeout_when_listener_never_answers(
    silent_server: Any, ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """A listener that accepts and never answers ends at the timeout."""
    result = await probe_http(web(f"http://127.0.0.1:{silent_server.port}/"), ctx)
    record(hardening_report, "HTTP", "accepts, never answers", {"timeout"}, result)


async def test_redirect_loop_detected_when_pages_point_at_each_other(
    http_server: HttpServer, ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """/a -> /b -> /a is a loop, not a hang."""
    http_server.routes["/a"] = redirect("/b")
    http_server.routes["/b"] = redirect("/a")
    result = await probe_http(web(http_server.url("/a")), ctx)
    record(hardening_report, "HTTP", "redirect loop", {"redirect_loop"}, result)


async def test_long_redirect_chain_cut_when_longer_than_limit(
    http_server: HttpServer, ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """50 redirects in a row stop at max_redirects (5)."""
    for i in range(50):
        http_server.routes[f"/{i}"] = redirect(f"/{i + 1}")
    result = await probe_http(web(http_server.url("/0")), ctx)
    record(hardening_report, "HTTP", "50-hop redirect chain", {"too_many_redirects"}, result)
    assert len(http_server.requests) == 6


# --- TLS ------------------------------------------------------------------------------------


def self_signed_context() -> ssl.SSLContext:
    """A server whose certificate is its own issuer (a CA certificate used as a leaf)."""
    lonely = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    lonely.cert_pem.write_to_path("/tmp/contact-monitor-self-signed.pem")
    lonely.private_key_pem.write_to_path("/tmp/contact-monitor-self-signed.key")
    context.load_cert_chain(
        "/tmp/contact-monitor-self-signed.pem", "/tmp/contact-monitor-self-signed.key"
    )
    return context


def tls_cases(ca: trustme.CA) -> dict[str, tuple[ssl.SSLContext, set[str]]]:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    stranger = trustme.CA()  # a chain nobody trusts
    return {
        "expired certificate": (
            server_context(
                ca.issue_cert(
                    "127.0.0.1", not_before=past - datetime.timedelta(days=90), not_after=past
                )
            ),
            {"tls_expired"},
        ),
        "certificate for another host": (
            server_context(ca.issue_cert("wrong.test")),
            {"tls_hostname_mismatch"},
        ),
        "self-signed certificate": (self_signed_context(), {"tls_untrusted"}),
        "untrusted chain": (server_context(stranger.issue_cert("127.0.0.1")), {"tls_untrusted"}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired certificate",
        "certificate for another host",
        "self-signed certificate",
        "untrusted chain",
    ],
)
async def test_tls_probe_fails_with_reason_when_certificate_is_bad(
    case: str, ca: trustme.CA, ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """Bad certificates fail with their own reason, never an error."""
    context, expected = tls_cases(ca)[case]
    with HttpServer(routes={"/": page("ok")}, tls=context) as server:
        result = await probe_http(web(server.url()), ctx)
    record(hardening_report, "TLS", case, expected, result)


# --- DNS ------------------------------------------------------------------------------------

DNS_CASES = [
    ("NXDOMAIN", "nowhere.test", {"dns_nxdomain"}),
    ("SERVFAIL", "servfail.test", {"dns_servfail"}),
    ("no answer at all", "silent.test", {"dns_timeout", "timeout"}),
    ("no MX and no address", "nomail.test", {"no_mx"}),
    ("no MX, an A record (implicit MX, RFC 5321 §5.1)", "nomx.test", {"success"}),
    ("null MX (RFC 7505)", "nullmx.test", {"null_mx"}),
    ("MX host without address", "noaddress.test", {"mx_no_address"}),
    ("truncated UDP answer (retried over TCP)", "big.test", {"success"}),
]


@pytest.mark.parametrize(("case", "domain", "expected"), DNS_CASES, ids=[c[0] for c in DNS_CASES])
async def test_mx_probe_ends_with_reason_when_dns_misbehaves(
    case: str,
    domain: str,
    expected: set[str],
    ctx: ProbeContext,
    hardening_report: list[dict[str, Any]],
):
    """Each DNS failure has its own reason; a truncated answer is retried over TCP."""
    channel = EmailChannel.model_validate(
        {"id": "m", "kind": "email", "email": f"x@{domain}", "timeout": TIMEOUT}
    )
    result = await probe_mx(channel, ctx)
    record(hardening_report, "DNS", case, expected, result)


# --- SMTP -----------------------------------------------------------------------------------


def smtp_channel(port: int, mode: str = "connect") -> EmailChannel:
    return EmailChannel.model_validate(
        {
            "id": "m",
            "kind": "email",
            "email": f"b2b@{MAIL_DOMAIN}",
            "smtp": mode,
            "smtp_port": port,
            "timeout": TIMEOUT,
        }
    )


SMTP_CASES = [
    ("554 banner", lambda c: c.sendall(b"554 5.7.1 go away\r\n"), "connect", {"smtp_banner"}),
    ("tarpit: never greets", None, "connect", {"timeout"}),
    ("banner after the timeout", peers.smtp_banner_after(TIMEOUT + 1), "connect", {"timeout"}),
    (
        "STARTTLS offered but broken",
        peers.smtp_broken_starttls,
        "starttls",
        {"tls_error", "smtp_starttls", "connect_reset"},
    ),
]


@pytest.mark.parametrize(
    ("case", "behaviour", "mode", "expected"), SMTP_CASES, ids=[c[0] for c in SMTP_CASES]
)
async def test_smtp_probe_ends_with_reason_when_server_misbehaves(
    case: str,
    behaviour: Any,
    mode: str,
    expected: set[str],
    raw_server: Any,
    silent_server: Any,
    ctx: ProbeContext,
    hardening_report: list[dict[str, Any]],
):
    """Rude, silent, late and broken mail servers end the probe with a reason."""
    port = silent_server.port if behaviour is None else raw_server(behaviour).port
    result = await probe_smtp(smtp_channel(port, mode), ctx)
    record(hardening_report, "SMTP", case, expected, result)


# --- pages scanned for contacts -------------------------------------------------------------


def source(url: str, cap: int = 5 * 1024 * 1024) -> Source:
    return Source.model_validate(
        {"id": "page", "url": url, "timeout": TIMEOUT, "max_body_bytes": cap}
    )


def digits_page() -> bytes:
    """5 MB of digit groups and separators: a worst case for phone detection."""
    rng = random.Random(0)
    line = "".join(rng.choice("0123456789 -()+.") for _ in range(999))
    return ("<html><body>" + f"<p>{line}</p>\n" * 5000).encode()[:5_000_000]


PAGE_CASES = [
    (
        "50 MB page (its first 5 MiB scanned)",
        lambda: b"<p>8 800 555-89-82</p>" + b"x" * 50_000_000,
        "text/html",
        {"success"},
        "+78005558982",
    ),
    (
        "broken HTML",
        lambda: (
            b"<html><body><div><p>8 800 555-89-82<table><td><b>x</p></div>"
            b"<<<>>><!-- unclosed <script>"
        ),
        "text/html",
        {"success"},
        "+78005558982",
    ),
    (
        "5 MB of nested <div>",
        lambda: b"<p>8 800 555-89-82</p>" + b"<div>" * 1_000_000,
        "text/html",
        {"success"},
        "+78005558982",
    ),
    ("5 MB page full of digits", digits_page, "text/html", {"success"}, None),
    (
        "5 MB of <br> between digit groups",
        lambda: b"<p>8 800 555-89-82</p>" + b"8 800 555<br>" * 400_000,
        "text/html",
        {"success"},
        "+78005558982",
    ),
    (
        "5 MB of hidden spans and tel: links",
        lambda: (
            b"<p>8 800 555-89-82</p>"
            + b'<span style="display:none"><a href="tel:+74952152408p1">x</a></span>' * 70_000
        ),
        "text/html",
        {"success"},
        "+78005558982",
    ),
    (
        "5 MB of @ and [at] soup",
        lambda: b"<p>8 800 555-89-82</p>" + b"a@b x [at] y [dot] " * 270_000,
        "text/html",
        {"success"},
        "+78005558982",
    ),
    (
        "windows-1251 declared in the header",
        lambda: "<p>Звоните: 8 800 555-89-82</p>".encode("cp1251"),
        "text/html; charset=windows-1251",
        {"success"},
        "+78005558982",
    ),
    (
        "koi8-r declared in <meta>",
        lambda: ('<meta charset="koi8-r"><p>Тел. 8 800 555-89-82</p>').encode("koi8-r"),
        "text/html",
        {"success"},
        "+78005558982",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "content_type", "expected", "phone"),
    PAGE_CASES,
    ids=[c[0] for c in PAGE_CASES],
)
async def test_source_scan_bounded_when_page_is_hostile(
    case: str,
    body: Callable[[], bytes],
    content_type: str,
    expected: set[str],
    phone: str | None,
    http_server: HttpServer,
    ctx: ProbeContext,
    hardening_report: list[dict[str, Any]],
):
    """Huge, broken, deep, digit-filled and non-UTF-8 pages: capped or read, quickly."""
    http_server.routes["/page"] = page(body(), content_type=content_type)
    started, cpu = time.monotonic(), time.process_time()
    result = await probe_source(source(http_server.url("/page")), ctx)
    # CPU, not wall time, is bounded: other processes on a busy CI machine don't count.
    cpu_seconds = time.process_time() - cpu
    record(
        hardening_report,
        "Pages",
        case,
        expected,
        result,
        {"bytes": result.details.get("body_bytes_read", result.details.get("body_bytes"))},
    )
    assert cpu_seconds < 2.5
    assert time.monotonic() - started < 10  # no hang, however busy the machine
    if phone:
        assert phone in {p.e164 for p in result.contacts.phones}


# --- redirects into our own network -----------------------------------------------------------


async def test_redirect_into_loopback_refused_when_target_is_public(
    http_server: HttpServer,
    ctx: ProbeContext,
    hardening_report: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
):
    """A public page redirecting to 127.0.0.1 (or the metadata address) is refused."""
    from monitor.probers import http as http_prober

    # The "public" site is a real server on 127.0.0.2, which the monitor is told is public;
    # every other address is judged as usual.
    judge = http_prober.is_internal_host

    async def public_127_0_0_2(host: str | None, *context: Any) -> bool:
        return False if host == "127.0.0.2" else await judge(host, *context)

    monkeypatch.setattr(http_prober, "is_internal_host", public_127_0_0_2)
    public = HttpServer(
        {
            "/to-loopback": redirect(http_server.url("/admin")),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        },
        bind="127.0.0.2",
    )
    with public:
        to_loopback = await probe_http(web(public.url("/to-loopback", "127.0.0.2")), ctx)
        to_metadata = await probe_http(web(public.url("/to-metadata", "127.0.0.2")), ctx)
    record(
        hardening_report,
        "Redirects",
        "public page redirecting to 127.0.0.1",
        {"redirect_private"},
        to_loopback,
    )
    record(
        hardening_report,
        "Redirects",
        "public page redirecting to 169.254.169.254",
        {"redirect_private"},
        to_metadata,
    )
    assert http_server.requests == []


async def test_redirect_within_loopback_allowed_when_target_itself_is_local(
    http_server: HttpServer, ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """A target configured on loopback may redirect within it."""
    http_server.routes["/old"] = redirect("/new")
    http_server.routes["/new"] = page("ok")
    result = await probe_http(web(http_server.url("/old")), ctx)
    record(
        hardening_report,
        "Redirects",
        "loopback target redirecting within loopback",
        {"success"},
        result,
    )


@pytest.mark.parametrize(
    "metadata",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fe80::1]/",
    ],
)
async def test_redirect_into_link_local_refused_when_target_itself_is_local(
    http_server: HttpServer, ctx: ProbeContext, metadata: str
):
    """A target on loopback may redirect within our network, but never to the link-local
    range where cloud metadata services answer; nothing is sent there (the suite's
    loopback guard would fail the test)."""
    http_server.routes["/to-metadata"] = redirect(metadata)
    result = await probe_http(web(http_server.url("/to-metadata")), ctx)
    assert result.reason == "redirect_private", result
    assert "link-local" in (result.message or "")


async def test_redirect_into_link_local_refused_when_private_redirects_are_allowed(
    http_server: HttpServer, tmp_path: Path
):
    """`allow_private_redirects` opens private and loopback addresses, not link-local."""
    from monitor.config import Defaults
    from monitor.probers import probe_context

    http_server.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    defaults = Defaults.model_validate({"timeout": "2s", "allow_private_redirects": True})
    async with probe_context(defaults, tmp_path) as allowing:
        result = await probe_http(web(http_server.url("/to-metadata")), allowing)
    assert result.reason == "redirect_private", result


FIXED_CASES = {
    "accepts, never answers",
    "redirect loop",
    "50-hop redirect chain",
    "public page redirecting to 127.0.0.1",
    "public page redirecting to 169.254.169.254",
    "loopback target redirecting within loopback",
    "expired certificate",
    "certificate for another host",
    "self-signed certificate",
    "untrusted chain",
    "18 hostile targets beside 5 healthy, 12 s",
    "peak RSS of the process running the probes, above its size before them",
}


def test_hardening_table_in_docs_lists_every_case_when_compared_with_the_suite():
    """docs/hardening.md (a copy of build/hardening.md from a run) covers every case here."""
    table = (Path(__file__).parent.parent / "docs" / "hardening.md").read_text()
    documented = {
        line.split("|")[2].strip()
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| area")
    }
    cases = {c[0] for c in RAW_CASES + DNS_CASES + SMTP_CASES + PAGE_CASES} | FIXED_CASES
    assert cases <= documented, cases - documented


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.fixture(scope="module", autouse=True)
def rss_before_module() -> float:
    """The process's resident size when this module's first case starts. In a whole-suite
    run other modules (browser, corpus, 10,000-channel registries) ran in the same process
    first, so its absolute peak says little of the hostile cases; what they add does."""
    return _rss_now_mb()


def test_test_process_memory_bounded_when_hostile_cases_have_run(
    hardening_report: list[dict[str, Any]], rss_before_module: float
):
    """The probes above ran in this process: its peak RSS rose less than 200 MB above its
    size when they began (an upper bound: a peak set earlier by other tests counts too)."""
    grown_mb = _peak_rss_mb() - rss_before_module
    hardening_report.append(
        {
            "area": "Memory",
            "case": "peak RSS of the process running the probes, above its size before them",
            "expected": "< 200 MB",
            "observed": f"{grown_mb:.0f} MB",
            "seconds": "–",
        }
    )
    assert grown_mb < 200
