"""History in SQLite: incidents, findings, roll-ups, uptime arithmetic, retention, restarts."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import wait_for
from servers import HttpServer, page

from monitor.cli import main
from monitor.history import History
from monitor.model import Finding

HOUR, DAY = 3600, 86400
T0 = 1_790_000_000.0 // DAY * DAY  # a midnight UTC, for readable arithmetic


@pytest.fixture
def history(tmp_path: Path) -> History:
    opened = History(tmp_path / "h.sqlite3", retention_seconds=90 * DAY)
    yield opened
    opened.close()


def test_incident_opened_and_closed_when_channel_goes_down_and_up(history: History):
    """down then up is one incident with its start, end and reason."""
    history.channel_down("ozon", "site", "web", T0, "timeout", "no answer")
    history.channel_up("ozon", "site", T0 + 300)
    history.write_pending()
    (incident,) = history.incidents()
    assert (incident.started_at, incident.ended_at, incident.reason) == (T0, T0 + 300, "timeout")


def test_no_duplicate_incident_when_down_is_reported_again(history: History):
    """A second "down" for an open incident (as after a restart) adds nothing."""
    history.channel_down("ozon", "site", "web", T0, "timeout", None)
    history.write_pending()
    history.channel_down("ozon", "site", "web", T0 + 60, "connect_refused", None)
    history.write_pending()
    assert [(i.started_at, i.reason) for i in history.incidents()] == [(T0, "timeout")]


def test_findings_raised_once_and_cleared_when_scans_change(history: History):
    """A finding seen on consecutive scans is one row, cleared at the scan that lacks it."""
    old = Finding("deprecated_published", "ozon", "help", "old", "+78002347000", "8 800 234-70-00")
    for at in (T0, T0 + 60):
        history.source_scanned("ozon", "help", [old], at)
    history.source_scanned("ozon", "help", [], T0 + 120)
    history.write_pending()
    (logged,) = history.findings_log()
    assert (logged.finding, logged.raised_at, logged.cleared_at) == (old, T0, T0 + 120)


def test_uptime_is_share_of_successes_when_hours_are_mixed(history: History):
    """3 ok + 1 failed in one hour and 4 ok in the next: 7/8 over both, 4/4 over the last."""
    for minute, ok in [(0, True), (10, True), (20, True), (30, False)]:
        history.probe("ozon", "site", T0 + minute * 60, ok, 0.1)
    for minute in range(4):
        history.probe("ozon", "site", T0 + HOUR + minute * 60, True, 0.3)
    history.write_pending()
    assert history.uptime("ozon", "site", since=T0) == pytest.approx(7 / 8)
    assert history.uptime("ozon", "site", since=T0 + HOUR) == 1.0
    assert history.uptime("ozon", "site", since=T0 + 2 * HOUR) is None


def test_rollup_adds_up_when_flushed_in_several_batches(history: History):
    """Two flushes into the same hour add counts and keep the max latency."""
    history.probe("ozon", "site", T0, True, 0.2)
    history.write_pending()
    history.probe("ozon", "site", T0 + 60, False, 0.9)
    history.write_pending()
    row = (
        sqlite3.connect(history.path)
        .execute("SELECT ok, failed, latency_sum, latency_max FROM rollup")
        .fetchone()
    )
    assert row == (1, 1, pytest.approx(1.1), 0.9)


def test_daily_uptime_per_local_day_when_offset_is_moscow(history: History):
    """Hours are grouped by the registry's local day (UTC+3): 22:00 UTC is the next day."""
    history.probe("ozon", "site", T0 + 20 * HOUR, False, 0.1)  # 23:00 Moscow, day 0
    history.probe("ozon", "site", T0 + 22 * HOUR, True, 0.1)  # 01:00 Moscow, day 1
    history.write_pending()
    days = history.daily_uptime(since=T0, utc_offset=3 * HOUR)[("ozon", "site")]
    assert days == {int(T0 // DAY): 0.0, int(T0 // DAY) + 1: 1.0}


def test_old_rows_purged_when_older_than_retention(tmp_path: Path):
    """Roll-ups, ended incidents, cleared findings past the retention go; open ones stay."""
    history = History(tmp_path / "r.sqlite3", retention_seconds=7 * DAY)
    now = T0 + 30 * DAY
    history.probe("ozon", "site", now - 10 * DAY, True, 0.1)
    history.probe("ozon", "site", now - 1 * DAY, True, 0.1)
    history.channel_down("ozon", "site", "web", now - 10 * DAY, "timeout", None)
    history.channel_up("ozon", "site", now - 9 * DAY)
    history.channel_down("ozon", "mail", "email", now - 20 * DAY, "no_mx", None)
    history.write_pending()
    assert history.purge(now) == 2
    assert [i.channel for i in history.incidents()] == ["mail"]
    assert history.uptime("ozon", "site", since=0) == 1.0
    history.close()


# --- the daemon's history across restarts --------------------------------------------------


def history_registry(path: Path, db: Path, channels: list[dict[str, Any]]) -> Path:
    """A registry of org `ozon` with `channels`, probed every second, down at the first
    failure, its history in `db`."""
    data = {
        "version": 1,
        "defaults": {
            "interval": "1s",
            "timeout": "1s",
            "failure_threshold": 1,
            "history": {"path": str(db)},
        },
        "organizations": [{"id": "ozon", "channels": channels}],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def write_registry(path: Path, url: str, db: Path) -> Path:
    return history_registry(path, db, [{"id": "site", "kind": "web", "url": url}])


def test_history_intact_when_daemon_is_killed_and_restarted(
    tmp_path: Path, closed_port: int, start_daemon: Any
):
    """kill -9, then a restart: the open incident is still there, once, with its start."""
    db = tmp_path / "history.sqlite3"
    config = write_registry(tmp_path / "r.yaml", f"http://127.0.0.1:{closed_port}/", db)
    first = start_daemon(config)
    started = wait_for(lambda: first.get("/api/v1/incidents").json(), "incident recorded")
    first.stop(signal.SIGKILL)
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)

    second = start_daemon(config)
    wait_for(lambda: second.value("contact_channel_up", channel="site") == 0, "down again")
    time.sleep(2.5)  # at least one flush after the restart
    incidents = second.get("/api/v1/incidents").json()
    assert [(i["channel"], i["started_at"], i["ended_at"]) for i in incidents] == [
        ("site", started[0]["started_at"], None)
    ]


def test_incident_closes_and_uptime_shows_when_channel_recovers(
    tmp_path: Path, http_server: HttpServer, start_daemon: Any, capsys: pytest.CaptureFixture
):
    """A channel that fails then answers: one closed incident, uptime below 1, in API and CLI."""
    answers = {"n": 0}

    def flaky(handler: Any) -> None:
        answers["n"] += 1
        page("ok", status=503 if answers["n"] <= 2 else 200)(handler)

    http_server.routes["/"] = flaky
    db = tmp_path / "history.sqlite3"
    config = write_registry(tmp_path / "r.yaml", http_server.url("/"), db)
    daemon = start_daemon(config)
    detail = wait_for(
        lambda: (
            (d := daemon.get("/api/v1/channels/ozon/site").json())["incidents"]
            and d["incidents"][0]["ended_at"]
            and d
        ),
        "recovered",
    )
    assert detail["incidents"][0]["reason"] == "http_status"
    assert 0 < detail["uptime"]["24h"] < 1
    assert set(detail["uptime"]) == {"24h", "7d", "30d"}
    assert daemon.get("/api/v1/channels/ozon/nope").status_code == 404

    assert main(["history", "--config", str(config), "--format", "json"]) == 0
    (incident,) = json.loads(capsys.readouterr().out)["incidents"]
    assert (incident["channel"], incident["reason"]) == ("site", "http_status")
    assert main(["history", "--config", str(config), "--channel", "site"]) == 0
    assert "http_status" in capsys.readouterr().out


def test_history_command_fails_clearly_when_database_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    """No database yet: one line saying so, exit 2."""
    assert main(["history", "--history-db", str(tmp_path / "none.sqlite3")]) == 2
    assert "no history at" in capsys.readouterr().err


def test_history_command_exits_2_naming_the_file_when_it_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`history` on a file that is not SQLite: one line with the file and SQLite's reason."""

    bogus = tmp_path / "h.sqlite3"
    bogus.write_bytes(b"not a database at all\n" * 50)
    assert main(["history", "--history-db", str(bogus)]) == 2
    err = capsys.readouterr().err
    assert f"{bogus}: file is not a database (SQLITE_NOTADB)" in err
    assert "Traceback" not in err
