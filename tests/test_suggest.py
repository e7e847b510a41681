"""`drift --suggest [--write]`: the registry change that settles the findings, as a reviewable
diff that keeps the file's comments, order and quoting, against pages on loopback."""

from __future__ import annotations

import datetime
import json
import subprocess
import zoneinfo
from pathlib import Path

import pytest
from servers import HttpServer, page

from monitor.cli import main

REGISTRY = """\
# Acme's contacts: reviewed by the support team.
version: 1
defaults:
  timeout: 3s
  resolver: {{nameservers: ["127.0.0.1"], port: {dns_port}}}

organizations:
  - id: acme
    sources:
      - id: help-contacts   # the help centre's contacts page
        url: {url}
    channels:
      # --- phones ---
      - id: bank-hotline
        kind: phone
        phone: "8 800 555-89-82"
        published_on: [help-contacts]
      - id: old-hotline
        kind: phone
        phone: '8 (800) 234-70-00'   # switched off in 2023
        status: deprecated
      # --- e-mail ---
      - id: b2b-email
        kind: email
        email: b2b@acme-torg.ru
        published_on:
          - help-contacts
"""

# Shows the bank line, the deprecated line, a number and an address the registry does not
# have, and no longer the B2B address.
PAGE = """<p>Банк: 8 800 555-89-82</p><p>Старый: +7 800 234 70 00</p>
<p>Полиция: +7 958 400-00-05 доб. 76077</p><p>Пишите: Sales@Acme-Torg.ru</p>"""


@pytest.fixture
def registry(http_server: HttpServer, dns_port: int, tmp_path: Path) -> Path:
    http_server.routes["/contacts"] = page(PAGE)
    path = tmp_path / "channels.yaml"
    path.write_text(REGISTRY.format(dns_port=dns_port, url=http_server.url("/contacts")))
    return path


def findings(config: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    main(["drift", "--config", str(config), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    return sorted((f["type"], f["contact"]) for f in report["findings"])


def test_diff_adds_unregistered_and_drops_vanished_when_page_drifted(
    registry: Path, capsys: pytest.CaptureFixture[str]
):
    """New channels carry published_on and the evidence; the vanished address leaves the page."""
    assert main(["drift", "--config", str(registry), "--suggest"]) == 1
    out, err = capsys.readouterr()
    today = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Moscow")).date()  # the registry's
    added = {line[1:] for line in out.splitlines() if line.startswith("+") and line[1:2] != "+"}
    removed = {line[1:] for line in out.splitlines() if line.startswith("-") and line[1:2] != "-"}
    assert removed == {"        published_on:", "          - help-contacts"}
    assert "      - id: phone-79584000005-ext-76077" in added
    assert '        phone: "+7 958 400-00-05 ext. 76077"' in added
    assert "      - id: email-sales-acme-torg.ru" in added
    assert "        published_on: [help-contacts]" in added
    notes = [line for line in added if line.startswith("        notes: ")]
    assert len(notes) == 2
    assert all("seen on help-contacts (http://127.0.0.1:" in n for n in notes)
    assert any(f"/contacts) on {today.isoformat()} as 'Sales@Acme-Torg.ru'" in n for n in notes)
    assert "the page must change; nothing to change in the registry" in err
    assert "+78002347000" in err


def test_next_drift_has_only_the_page_side_finding_when_suggestion_is_written(
    registry: Path, capsys: pytest.CaptureFixture[str]
):
    """--write applies the change, validate passes, and drift has nothing left it settles."""
    before = findings(registry, capsys)
    assert ("active_missing", "b2b@acme-torg.ru") in before
    assert main(["drift", "--config", str(registry), "--suggest", "--write"]) == 1
    assert f"wrote {registry}" in capsys.readouterr().err
    assert main(["validate", "--config", str(registry)]) == 0
    capsys.readouterr()
    assert findings(registry, capsys) == [("deprecated_published", "+78002347000")]


def test_comments_order_and_quoting_kept_when_suggestion_is_written(
    registry: Path, capsys: pytest.CaptureFixture[str]
):
    """Every line the change does not touch is kept byte for byte, in its place."""
    original = registry.read_text()
    main(["drift", "--config", str(registry), "--suggest", "--write"])
    written = registry.read_text()
    untouched = [line for line in original.splitlines() if line.strip() != "- help-contacts"]
    untouched.remove("        published_on:")
    remaining = iter(written.splitlines())
    assert all(line in remaining for line in untouched)  # a subsequence: same lines, same order
    assert written.startswith(original[: original.index("      # --- e-mail ---")])


def test_patch_applies_the_diff_when_printed(
    registry: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    """The printed diff is a real unified diff: patch(1) gives what --write would."""
    main(["drift", "--config", str(registry), "--suggest"])
    diff = capsys.readouterr().out
    copy = tmp_path / "copy.yaml"
    copy.write_text(registry.read_text())
    subprocess.run(["patch", "--quiet", str(copy)], input=diff, text=True, check=True, timeout=30)
    main(["drift", "--config", str(registry), "--suggest", "--write"])
    assert copy.read_text() == registry.read_text()


def test_nothing_suggested_when_only_the_page_must_change(
    http_server: HttpServer, registry: Path, capsys: pytest.CaptureFixture[str]
):
    """A deprecated number on the page is the page's problem: no diff, and it says so."""
    http_server.routes["/contacts"] = page(
        "<p>8 800 555-89-82, b2b@acme-torg.ru</p><p>+7 800 234 70 00</p>"
    )
    before = registry.read_text()
    assert main(["drift", "--config", str(registry), "--suggest", "--write"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "no registry change to suggest" in err
    assert "unsettled: acme/old-hotline: the deprecated +78002347000 is still shown" in err
    assert registry.read_text() == before


def test_file_holding_the_organization_edited_when_registry_is_a_directory(
    registry: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    """In a directory registry, the change lands in the file that has the organisation."""
    folder = tmp_path / "registry.d"
    folder.mkdir()
    text = registry.read_text()
    (folder / "10-acme.yaml").write_text(text)
    (folder / "20-other.yaml").write_text("organizations:\n  - id: other  # untouched\n")
    assert main(["drift", "--config", str(folder), "--suggest", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert f"--- {folder}/10-acme.yaml" in report["diff"]
    assert "20-other.yaml" not in report["diff"]
    main(["drift", "--config", str(folder), "--suggest", "--write"])
    capsys.readouterr()
    assert findings(folder, capsys) == [("deprecated_published", "+78002347000")]
    assert (folder / "20-other.yaml").read_text() == "organizations:\n  - id: other  # untouched\n"


def test_usage_error_when_write_is_given_without_suggest(
    registry: Path, capsys: pytest.CaptureFixture[str]
):
    """--write alone would be a surprise: exit 2 and say why."""
    assert main(["drift", "--config", str(registry), "--write"]) == 2
    assert "use it with --suggest" in capsys.readouterr().err
