"""The status page as a browser shows it: Debian's headless Chromium loads the page served
by a running daemon with a down channel and drift findings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RunningDaemon, wait_for
from servers import HttpServer, page

from monitor.browser import CHROMIUM_ARGS

HOSTILE = "<script>document.title='pwned'</script>"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "chromium missing: `make test` installs Debian's chromium"
    return subprocess.run(
        [
            binary,
            *CHROMIUM_ARGS,  # as the daemon's own browser runs here
            f"--user-data-dir={tmp_path / 'chromium'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
def daemon_with_findings(
    tmp_path: Path, http_server: HttpServer, closed_port: int, start_daemon: Any
) -> RunningDaemon:
    http_server.routes["/contacts"] = page("<p>Звоните: 8 (800) 234-70-00</p>")
    http_server.routes["/site"] = page("ok")
    http_server.routes["/moved"] = page("x", headers={"Content-Encoding": HOSTILE})
    config = tmp_path / "channels.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {
                    "interval": "1s",
                    "source_interval": "1s",
                    "timeout": "1s",
                    "failure_threshold": 1,
                },
                "organizations": [
                    {
                        "id": "ozon",
                        "sources": [
                            {"id": "help-contacts", "url": http_server.url("/contacts")},
                            {"id": "old-page", "url": http_server.url("/moved")},
                        ],
                        "channels": [
                            {
                                "id": "marketplace-hotline-old",
                                "kind": "phone",
                                "service": "marketplace",
                                "name": "Marketplace, old free line",
                                "phone": "8 (800) 234-70-00",
                                "status": "deprecated",
                            },
                            {
                                "id": "seller-portal",
                                "kind": "web",
                                "service": "sellers",
                                "name": f"Sellers {HOSTILE}",
                                "url": f"http://127.0.0.1:{closed_port}/",
                            },
                            {
                                "id": "bank-site",
                                "kind": "web",
                                "service": "bank",
                                "name": "Ozon Bank site",
                                "url": http_server.url("/site"),
                                "hours": {"days": "mon-fri", "from": "09:00", "to": "18:00"},
                            },
                        ],
                    }
                ],
            },
            allow_unicode=True,
        )
    )
    daemon = start_daemon(config)
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "first round")
    wait_for(lambda: len(daemon.get("/api/v1/findings").json()) == 2, "both findings")
    return daemon


def test_browser_shows_down_channel_and_deprecated_number_when_page_loads(
    daemon_with_findings: RunningDaemon, tmp_path: Path
):
    """The rendered page names the deprecated number and its page, and the down channel."""
    done = chromium(tmp_path, "--dump-dom", daemon_with_findings.url + "/")
    assert done.returncode == 0, done.stderr
    dom = done.stdout
    assert "Deprecated 8 (800) 234-70-00 still shown on help-contacts" in dom
    assert "<title>ozon: contact status — 1 down</title>" in dom
    seller = dom[dom.index('id="ozon-seller-portal"') :]
    assert '<span class="badge down">down</span>' in seller[:2000]
    assert "connect_refused" in seller[:2000]
    assert "hours mon-fri 09:00–18:00" in dom


def test_scraped_markup_shown_as_text_when_evidence_contains_script(
    daemon_with_findings: RunningDaemon, tmp_path: Path
):
    """<script> from a hostile page or the registry is text on the page, never run."""
    dom = chromium(tmp_path, "--dump-dom", daemon_with_findings.url + "/").stdout
    assert "<script" not in dom
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom

    assert "Sellers &lt;script&gt;" in dom


def test_page_works_without_javascript_when_refreshing_itself(
    daemon_with_findings: RunningDaemon, tmp_path: Path
):
    """The page carries no script, refreshes itself with <meta>, and fits a phone screen."""
    html = daemon_with_findings.get("/").text
    assert '<meta http-equiv="refresh" content="30">' in html
    assert 'name="viewport"' in html
    shot = tmp_path / "phone.png"
    done = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=390,844", daemon_with_findings.url + "/"
    )

    assert done.returncode == 0, done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
