"""A reload that changes what a channel or source measures starts it again from unknown:
"a state the monitor shows is a state it measured"."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import registry_with, wait_for
from servers import HttpServer, page

from monitor.extract import extract_contacts
from monitor.metrics import MonitorMetrics
from monitor.model import ProbeResult
from monitor.push import overdue_push
from monitor.state import State

SITE = {"id": "z", "kind": "web", "url": "https://acme.test/ok"}
OLD = {"id": "old", "kind": "phone", "phone": "8 (800) 234-70-00", "status": "deprecated"}
SOURCE = {"id": "contacts", "url": "https://acme.test/contacts"}
KEY = ("acme", "z")
OK = ProbeResult(True, details={"final_url": "https://acme.test/ok"})


def up_state(*channels: dict[str, Any]) -> State:
    state = State(registry_with(list(channels), [SOURCE]))
    for _ in range(2):
        state.record_channel(KEY, OK)
    assert state.channels[KEY].up is True
    return state


def test_channel_state_is_unknown_when_reload_changes_its_url():
    state = up_state(SITE)
    state.set_registry(registry_with([{**SITE, "url": "http://127.0.0.1:3/"}], [SOURCE]))
    channel = state.channels[KEY]
    assert (channel.result, channel.up, channel.probes_ok) == (None, None, 0)
    assert state.redefined_channels == {KEY}


def test_channel_state_is_unknown_when_reload_changes_its_kind():
    state = up_state(SITE)
    state.set_registry(registry_with([{"id": "z", "kind": "phone", "phone": "+74951234567"}]))
    assert state.channels[KEY].up is None
    assert state.channels[KEY].result is None


def test_channel_state_is_unknown_when_reload_switches_it_to_push():
    state = up_state(SITE)
    pushed = {**SITE, "check": "push", "push": {"token_env": "PUSH_TOKEN"}}
    state.set_registry(registry_with([pushed], [SOURCE]))
    assert state.channels[KEY].up is None
    assert state.channels[KEY].result is None


def test_channel_state_is_unknown_when_reload_changes_its_expectation():
    state = up_state(SITE)
    state.set_registry(registry_with([{**SITE, "expect": {"status": [204]}}], [SOURCE]))
    assert state.channels[KEY].up is None


def test_channel_state_is_kept_when_reload_changes_only_presentation():
    state = up_state(SITE)
    renamed = {**SITE, "name": "Site", "service": "sellers", "notes": "n", "interval": "10m"}
    state.set_registry(registry_with([renamed], [SOURCE]))
    assert state.channels[KEY].up is True
    assert state.channels[KEY].result is OK
    assert state.redefined_channels == set()


def test_metrics_show_no_result_when_reload_changes_the_url():
    state = up_state(SITE)
    metrics = MonitorMetrics(state)
    assert b"contact_probe_success{" in metrics.render()[0]
    state.set_registry(registry_with([{**SITE, "url": "http://127.0.0.1:3/"}], [SOURCE]))
    text = metrics.render()[0].decode()
    assert 'contact_probe_success{org="acme",channel="z"' not in text
    assert 'contact_channel_up{org="acme",channel="z"' not in text


def test_source_findings_dropped_when_reload_changes_its_url():
    state = State(registry_with([OLD], [SOURCE]))
    html = "<p>Old: +7 800 234 70 00</p>"
    state.record_source(
        ("acme", "contacts"), ProbeResult(True, contacts=extract_contacts(html, "RU", html=True))
    )
    assert [f.type for f in state.all_findings()] == ["deprecated_published"]
    state.set_registry(registry_with([OLD], [{**SOURCE, "url": "https://acme.test/new"}]))
    assert state.all_findings() == []
    assert state.sources[("acme", "contacts")].result is None


def _write(path: Path, channel: dict[str, Any]) -> None:
    """Replace the registry atomically, as `mv` does."""
    data = {
        "version": 1,
        "defaults": {"interval": "1s", "timeout": "1s"},
        "organizations": [{"id": "acme", "channels": [channel]}],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    os.replace(tmp, path)


def test_daemon_measures_new_target_soon_when_reload_changes_the_url(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, closed_port: int
):
    """The repro: an up web channel moved (by mv) to a dead URL with a 10 min interval is
    unknown at once, measured down within its first-round spread, and counted rescheduled."""
    http_server.routes["/ok"] = page("ok")
    config = tmp_path / "r.yaml"
    _write(config, {"id": "z", "kind": "web", "url": http_server.url("/ok"), "interval": "5s"})
    daemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_channel_up", channel="z") == 1, "z up")
    dead = f"http://127.0.0.1:{closed_port}/"
    _write(config, {"id": "z", "kind": "web", "url": dead, "interval": "10m"})
    wait_for(lambda: daemon.value("contact_probe_success", channel="z") == 0, "z probed anew")
    channel = daemon.get("/api/v1/channels").json()[0]
    assert channel["success"] is False
    assert channel["reason"] == "connect_refused"
    assert http_server.url("/ok") not in json.dumps(channel)
    reloads = [
        json.loads(line)
        for line in daemon.logs().splitlines()
        if line.startswith("{") and '"reloaded"' in line
    ]
    assert reloads[-1]["rescheduled"] == 1


def test_push_not_missing_when_reload_just_switched_channel_to_push(
    monkeypatch: pytest.MonkeyPatch,
):
    """A push is expected from the reload that asked for it, not from the daemon's start."""
    monkeypatch.setenv("PUSH_TOKEN", "t")
    state = up_state(SITE)
    state.started_at -= 3600  # the daemon has run for an hour
    pushed = {**SITE, "check": "push", "push": {"token_env": "PUSH_TOKEN", "expect_every": "15m"}}
    state.set_registry(registry_with([pushed], [SOURCE]))
    assert overdue_push(state, KEY) is None
    assert overdue_push(state, KEY, time.time() + 16 * 60).reason == "push_missing"
