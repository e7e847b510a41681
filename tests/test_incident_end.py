"""Incidents that end without a measured recovery: the channel left the registry, was
redefined, or the monitor stopped. None of them stays "ongoing" with nothing measuring it."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import registry_with, wait_for
from test_history import history_registry

from monitor.cli import main
from monitor.history import History
from monitor.model import ProbeResult
from monitor.state import State

SITE = {"id": "site", "kind": "web", "url": "https://acme.test/"}
FAIL = ProbeResult(False, "timeout", "no answer")


@pytest.fixture
def history(tmp_path: Path) -> History:
    opened = History(tmp_path / "h.sqlite3", retention_seconds=86400)
    yield opened
    opened.close()


def down_state(history: History) -> State:
    state = State(registry_with([SITE, {**SITE, "id": "other"}]), history)
    for _ in range(2):
        state.record_channel(("acme", "site"), FAIL)
    history.write_pending()
    (incident,) = history.incidents()
    assert incident.ended_at is None
    return state


def test_incident_ends_noted_channel_removed_when_reload_removes_the_channel(
    history: History,
):
    state = down_state(history)
    state.set_registry(registry_with([{**SITE, "id": "other"}]))
    history.write_pending()
    (incident,) = history.incidents()
    assert incident.ended_at is not None
    assert incident.end_note == "channel removed"
    assert incident.to_json()["end_note"] == "channel removed"


def test_incident_ends_noted_channel_redefined_when_reload_changes_its_target(
    history: History,
):
    state = down_state(history)
    state.set_registry(registry_with([{**SITE, "url": "https://acme.test/new"}]))
    history.write_pending()
    (incident,) = history.incidents()
    assert (incident.ended_at is not None, incident.end_note) == (True, "channel redefined")


def test_incident_stays_open_when_reload_changes_only_presentation(history: History):
    state = down_state(history)
    state.set_registry(registry_with([{**SITE, "name": "Site"}, {**SITE, "id": "other"}]))
    history.write_pending()
    (incident,) = history.incidents()
    assert incident.ended_at is None


def test_open_incidents_end_noted_monitor_stopped_when_stop_is_recorded(history: History):
    history.channel_down("acme", "site", "web", 100.0, "timeout", None)
    history.channel_down("acme", "mail", "email", 100.0, "timeout", None)
    history.monitor_stopped(160.0)
    history.write_pending()
    ends = {(i.channel, i.ended_at, i.end_note) for i in history.incidents()}
    assert ends == {("site", 160.0, "monitor stopped"), ("mail", 160.0, "monitor stopped")}


def test_old_database_gains_end_note_when_opened(tmp_path: Path):
    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE incidents (id INTEGER PRIMARY KEY, org TEXT NOT NULL, "
        "channel TEXT NOT NULL, kind TEXT NOT NULL, started_at REAL NOT NULL, "
        "ended_at REAL, reason TEXT, message TEXT)"
    )
    con.execute("INSERT INTO incidents VALUES (1, 'acme', 'site', 'web', 1.0, NULL, 'x', NULL)")
    con.commit()
    con.close()
    history = History(db, retention_seconds=float("inf"))
    try:
        (incident,) = history.incidents()
        assert (incident.channel, incident.end_note) == ("site", None)
    finally:
        history.close()


def test_history_accepts_channel_id_when_channel_left_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    db = tmp_path / "h.sqlite3"
    history = History(db, retention_seconds=float("inf"))
    history.channel_down("ozon", "gone", "web", time.time() - 3600, "timeout", None)
    history.channel_ended("ozon", "gone", time.time() - 60, "channel removed")
    history.close()
    config = history_registry(tmp_path / "r.yaml", db, [SITE])
    args = ["history", "--config", str(config), "--since", "3650d"]
    assert main([*args, "--channel", "gone", "--format", "json"]) == 0
    (incident,) = json.loads(capsys.readouterr().out)["incidents"]
    assert (incident["channel"], incident["end_note"]) == ("gone", "channel removed")
    assert main([*args, "--channel", "ozon/gone"]) == 0
    assert "(channel removed)" in capsys.readouterr().out
    assert main([*args, "--channel", "never-was"]) == 2
    assert "never-was" in capsys.readouterr().err


def test_incident_ends_noted_monitor_stopped_when_daemon_stops_cleanly(
    tmp_path: Path, closed_port: int, start_daemon: Any, capsys: pytest.CaptureFixture
):
    db = tmp_path / "history.sqlite3"
    site = {"id": "site", "kind": "web", "url": f"http://127.0.0.1:{closed_port}/"}
    config = history_registry(tmp_path / "r.yaml", db, [site])
    daemon = start_daemon(config)
    wait_for(lambda: daemon.get("/api/v1/incidents").json(), "incident recorded")
    assert daemon.stop() == 0
    assert main(["history", "--config", str(config)]) == 0
    assert "(monitor stopped)" in capsys.readouterr().out
    assert main(["history", "--config", str(config), "--format", "json"]) == 0
    (incident,) = json.loads(capsys.readouterr().out)["incidents"]
    assert incident["ended_at"] is not None
    assert incident["end_note"] == "monitor stopped"
