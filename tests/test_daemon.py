"""The daemon end to end: a real process on loopback, scraped over HTTP, checked by promtool,
reloaded and stopped by signals."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import RunningDaemon, wait_for
from servers import HttpServer, page

ROOT = Path(__file__).parent.parent


def write(
    path: Path,
    channels: list[dict[str, Any]],
    sources: list[dict[str, Any]] | None = None,
    dns_port: int | None = None,
    **defaults: Any,
) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "defaults": {"interval": "1s", "source_interval": "1s", "timeout": "1s", **defaults},
        "organizations": [{"id": "acme", "channels": channels, "sources": sources or []}],
    }
    if dns_port:
        data["defaults"]["resolver"] = {"nameservers": ["127.0.0.1"], "port": dns_port}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.fixture
def scenario(http_server: HttpServer, closed_port: int, tmp_path: Path) -> Path:
    """A working site, a refused one, and a page still showing a deprecated number."""
    http_server.routes["/"] = page("<p>Сообщения</p>")
    http_server.routes["/contacts"] = page("<p>8 800 555-89-82</p><p>Old: +7 800 234 70 00</p>")
    return write(
        tmp_path / "channels.yaml",
        [
            {
                "id": "hotline",
                "kind": "phone",
                "phone": "8 800 555-89-82",
                "published_on": ["contacts"],
            },
            {
                "id": "old-hotline",
                "kind": "phone",
                "phone": "8 (800) 234-70-00",
                "status": "deprecated",
                "replaced_by": "site",
            },
            {
                "id": "site",
                "kind": "web",
                "service": "marketplace",
                "url": http_server.url("/"),
                "expect": {"body_regex": "Сообщения"},
            },
            {"id": "broken", "kind": "web", "url": f"http://127.0.0.1:{closed_port}/"},
        ],
        [{"id": "contacts", "url": http_server.url("/contacts")}],
    )


def test_down_channel_is_0_with_reason_when_scraped(scenario: Path, start_daemon: Any):
    """A refused channel: probe_success 0, its reason, and damped down after two failures."""
    daemon = start_daemon(scenario)
    wait_for(lambda: daemon.value("contact_channel_up", channel="broken") == 0, "broken down")
    assert daemon.value("contact_probe_success", channel="broken") == 0
    assert (
        daemon.value("contact_probe_failure_info", channel="broken", reason="connect_refused") == 1
    )
    assert daemon.value("contact_probe_success", channel="site", service="marketplace") == 1
    assert daemon.value("contact_probe_http_status_code", channel="site") == 200
    assert daemon.value("contact_channel_up", channel="site") == 1


def test_metrics_are_gzipped_when_the_scraper_accepts_gzip(scenario: Path, start_daemon: Any):
    """Prometheus sends Accept-Encoding: gzip: the exposition comes compressed and decodes to
    the same samples."""
    daemon = start_daemon(scenario)
    wait_for(lambda: daemon.value("contact_probe_success", channel="site") == 1, "probing")
    with httpx.stream(
        "GET", daemon.url + "/metrics", headers={"Accept-Encoding": "gzip"}, **daemon.client
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    text = gzip.decompress(raw).decode()
    assert len(raw) < len(text) / 3
    assert daemon.value("contact_probe_success", text, channel="site") == 1


def test_metrics_are_plain_when_the_scraper_does_not_ask_for_gzip(
    scenario: Path, start_daemon: Any
):
    """curl without --compressed gets the text as is."""
    daemon = start_daemon(scenario)
    wait_for(lambda: daemon.value("contact_probe_success", channel="site") == 1, "probing")
    response = httpx.get(
        daemon.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=5, **daemon.client
    )
    assert "content-encoding" not in response.headers
    assert daemon.value("contact_probe_success", response.text, channel="site") == 1


def test_deprecated_published_is_1_when_page_shows_old_number(scenario: Path, start_daemon: Any):
    """The deprecated number on the page: contact_deprecated_published 1, one finding counted."""
    daemon = start_daemon(scenario)
    wait_for(
        lambda: (
            daemon.value("contact_deprecated_published", channel="old-hotline", source="contacts")
            == 1
        ),
        "deprecated published",
    )
    assert (
        daemon.value("contact_drift_findings", source="contacts", type="deprecated_published") == 1
    )
    assert daemon.value("contact_drift_findings", source="contacts", type="active_missing") == 0
    assert daemon.value("contact_channel_deprecated", channel="old-hotline") == 1
    assert (
        daemon.value(
            "contact_channel_info",
            channel="old-hotline",
            status="deprecated",
            contact="8 (800) 234-70-00",
        )
        == 1
    )


def test_exposition_passes_promtool_when_every_metric_is_present(scenario: Path, start_daemon: Any):
    """`promtool check metrics` (Debian's prometheus) finds nothing to complain about."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs Debian's prometheus package"
    daemon = start_daemon(scenario)
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "first round")
    wait_for(lambda: daemon.value("contact_channel_up", channel="broken") == 0, "broken down")
    text = daemon.metrics_text()
    for name in (
        "contact_probe_success",
        "contact_probe_duration_seconds",
        "contact_channel_info",
        "contact_channel_deprecated",
        "contact_channel_open",
        "contact_channel_up",
        "contact_deprecated_published",
        "contact_drift_findings",
        "contact_probes_total",
        "contact_scheduler_lag_seconds_bucket",
        "contact_config_last_reload_successful",
        "contact_monitor_build_info",
        "contact_probe_last_run_timestamp_seconds",
    ):
        assert f"\n{name}{{" in text or f"\n{name} " in text, name
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    complaints = (checked.stdout + checked.stderr).splitlines()
    assert complaints == [], complaints


def test_readyz_is_503_until_first_round_then_200(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """Ready only when every channel and source has a result."""
    http_server.routes["/"] = page("ok")
    config = write(
        tmp_path / "r.yaml",
        [{"id": "late", "kind": "web", "url": http_server.url("/"), "interval": "3s"}],
        interval="3s",
    )
    daemon = start_daemon(config)
    first = daemon.get("/readyz")
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "ready")
    assert (first.status_code, first.json()["status"]) in ((503, "starting"), (200, "ready"))
    assert daemon.get("/readyz").json() == {"status": "ready", "probed": 1, "total": 1}


def test_api_lists_channels_and_findings_when_asked(scenario: Path, start_daemon: Any):
    """/api/v1/channels and /api/v1/findings return JSON described by /openapi.json."""
    daemon = start_daemon(scenario)
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "first round")
    channels = {c["channel"]: c for c in daemon.get("/api/v1/channels").json()}
    assert channels["broken"]["reason"] == "connect_refused"
    assert channels["site"]["success"] is True
    findings = daemon.get("/api/v1/findings").json()
    assert {
        "type": "deprecated_published",
        "org": "acme",
        "channel": "old-hotline",
        "source": "contacts",
        "contact": "+78002347000",
        "evidence": "+7 800 234 70 00",
    } in findings
    paths = daemon.get("/openapi.json").json()["paths"]
    assert {"/api/v1/channels", "/api/v1/findings", "/healthz", "/readyz"} <= set(paths)


def test_series_follow_registry_when_file_changes(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """Add a channel, remove one, then break the file: series appear, vanish, and survive."""
    http_server.routes["/"] = page("ok")
    site = {"id": "a", "kind": "web", "url": http_server.url("/")}
    config = write(tmp_path / "r.yaml", [site, {**site, "id": "b"}])
    daemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_probe_success", channel="b") == 1, "b probed")

    write(config, [site, {**site, "id": "c"}])
    wait_for(lambda: daemon.value("contact_probe_success", channel="c") == 1, "c appears")
    assert daemon.value("contact_channel_info", channel="b") is None
    assert daemon.value("contact_probes_total", channel="b", result="success") is None
    assert daemon.value("contact_config_last_reload_successful") == 1

    config.write_text("version: 1\norganizations:\n  - id: acme\n    channels: [{id: x}]\n")
    wait_for(lambda: daemon.value("contact_config_last_reload_successful") == 0, "reload fails")
    assert daemon.value("contact_config_reloads_total", result="failure") == 1
    probes = daemon.value("contact_probes_total", channel="c", result="success")
    wait_for(
        lambda: daemon.value("contact_probes_total", channel="c", result="success") > probes,
        "c still probed after the bad reload",
    )
    assert daemon.value("contact_probe_success", channel="a") == 1
    assert "reload_failed" in daemon.logs()


def test_reload_happens_at_once_when_sent_sighup(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """SIGHUP reloads the file without waiting for the watcher."""
    http_server.routes["/"] = page("ok")
    site = {"id": "a", "kind": "web", "url": http_server.url("/")}
    config = write(tmp_path / "r.yaml", [site])
    daemon = start_daemon(config)
    write(config, [site, {**site, "id": "d"}])
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.value("contact_channel_info", channel="d") == 1, "d added", 5)
    events = [json.loads(line) for line in daemon.logs().splitlines() if line.startswith("{")]
    assert any(e["event"] == "reloaded" and e["trigger"] == "sighup" for e in events)


def test_slow_target_does_not_delay_other_channels_when_probed_together(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """A target that takes 2.5 s to answer leaves the others on their 1 s schedule."""

    def slow(handler: Any) -> None:
        time.sleep(2.5)
        page("late")(handler)

    http_server.routes["/slow"] = slow
    http_server.routes["/fast"] = page("ok")
    fast = [
        {"id": f"fast-{i}", "kind": "web", "url": http_server.url(f"/fast?{i}")} for i in range(6)
    ]
    slow_channel = {
        "id": "slow",
        "kind": "web",
        "url": http_server.url("/slow"),
        "interval": "5s",
        "timeout": "5s",
    }
    daemon = start_daemon(write(tmp_path / "r.yaml", [slow_channel, *fast]))
    wait_for(lambda: daemon.value("contact_probe_success", channel="slow") == 1, "slow answered")
    time.sleep(4)
    for i in range(6):
        assert daemon.value("contact_probes_total", channel=f"fast-{i}", result="success") >= 5
    scrape = daemon.metrics_text()  # one scrape, so the count and the bucket agree
    lag_count = daemon.value("contact_scheduler_lag_seconds_count", scrape, job="channel")
    under_half_second = daemon.value(
        "contact_scheduler_lag_seconds_bucket", scrape, job="channel", le="0.5"
    )
    assert lag_count >= 30
    assert under_half_second == lag_count


def test_exits_0_when_sent_sigterm(scenario: Path, start_daemon: Any):
    """SIGTERM stops scheduling, finishes, and exits 0."""
    daemon: RunningDaemon = start_daemon(scenario)
    wait_for(lambda: daemon.value("contact_probe_success", channel="site") == 1, "probing")
    assert daemon.stop(signal.SIGTERM) == 0
    assert '"stopped"' in daemon.logs()


def test_exits_0_when_sent_sigint(scenario: Path, start_daemon: Any):
    """SIGINT (Ctrl-C) is a clean stop too."""
    daemon: RunningDaemon = start_daemon(scenario)
    assert daemon.stop(signal.SIGINT) == 0


def test_shipped_registry_runs_when_there_is_no_internet(tmp_path: Path, start_daemon: Any):
    """The Ozon registry runs; every probe gets a result, each failure a reason, no crash;
    the phone lines, which nothing dials, are never up or down: only their number is valid."""
    data = yaml.safe_load((ROOT / "config" / "channels.yaml").read_text())
    data["defaults"].update(interval="2s", timeout="2s")
    config = tmp_path / "channels.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    daemon = start_daemon(config)
    wait_for(
        lambda: len(daemon.samples("contact_probe_last_run_timestamp_seconds")) == 18,
        "every channel probed",
        timeout=20,
    )
    phones = {s.labels["channel"] for s in daemon.samples("contact_phone_number_valid")}
    assert len(phones) == 7
    assert all(s.value == 1 for s in daemon.samples("contact_phone_number_valid"))
    assert len(daemon.samples("contact_probe_success")) == 11
    judged = {s.labels["channel"] for s in daemon.samples("contact_probe_success")}
    judged |= {s.labels["channel"] for s in daemon.samples("contact_channel_up")}
    assert not phones & judged
    reasons = {
        s.labels["channel"]: s.labels["reason"]
        for s in daemon.samples("contact_probe_failure_info")
    }
    failed = {s.labels["channel"] for s in daemon.samples("contact_probe_success") if s.value == 0}
    assert failed == set(reasons)
    assert all(reasons.values())
    assert daemon.value("contact_probe_success", channel="bank-hotline") is None
    assert daemon.proc.poll() is None


def registry_warnings(daemon: RunningDaemon) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in daemon.logs().splitlines() if line.startswith("{")]
    return [e for e in events if e["event"] == "registry_warning"]


def test_registry_warnings_logged_once_when_daemon_starts(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """The same number on two channels: one `registry_warning` at warning level at start."""
    http_server.routes["/"] = page("ok")
    site = {"id": "site", "kind": "web", "url": http_server.url("/")}
    phones = [
        {"id": "hotline", "kind": "phone", "phone": "8 800 555-89-82"},
        {"id": "hotline-copy", "kind": "phone", "phone": "+7 (800) 555 89 82"},
    ]
    daemon = start_daemon(write(tmp_path / "r.yaml", [site, *phones]))
    wait_for(lambda: daemon.value("contact_probe_success", channel="site") == 1, "probing")
    time.sleep(1.5)  # a few more rounds: the warning is not repeated per probe
    (warning,) = registry_warnings(daemon)
    assert warning["level"] == "warning"
    assert warning["trigger"] == "start"
    assert warning["path"] == "organizations[acme].channels[hotline-copy].phone"
    assert "same phone number as channel 'hotline'" in warning["message"]


def test_registry_warnings_logged_when_reload_succeeds(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """A reload to a registry with `replaced_by` on an active channel logs that warning;
    a failed reload logs none."""
    http_server.routes["/"] = page("ok")
    site = {"id": "site", "kind": "web", "url": http_server.url("/")}
    config = write(tmp_path / "r.yaml", [site])
    daemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_probe_success", channel="site") == 1, "probing")
    assert registry_warnings(daemon) == []

    config.write_text("version: 1\norganizations:\n  - id: acme\n    channels: [{id: x}]\n")
    wait_for(lambda: daemon.value("contact_config_last_reload_successful") == 0, "reload fails")
    assert registry_warnings(daemon) == []

    old = {"id": "old", "kind": "web", "url": http_server.url("/"), "replaced_by": "site"}
    write(config, [site, old])
    wait_for(lambda: registry_warnings(daemon), "warning logged after the reload")
    (warning,) = registry_warnings(daemon)
    assert warning["level"] == "warning"
    assert warning["trigger"] == "file_changed"
    assert warning["path"] == "organizations[acme].channels[old].replaced_by"
    assert "replaced_by on an active channel" in warning["message"]
