"""Maintenance windows: when a channel is in one, what the registry accepts, and what the
exporter, the history and the status page make of it."""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import registry_with
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from monitor.config import MaintenanceWindow
from monitor.history import History
from monitor.loader import RegistryInvalid, load_registry
from monitor.maintenance import in_maintenance, window_end, windows_by_channel
from monitor.metrics import MonitorMetrics
from monitor.model import ProbeResult
from monitor.state import State
from monitor.status_page import render_status_page

MSK = datetime.timezone(datetime.timedelta(hours=3))
SITE = {"id": "site", "kind": "web", "url": "https://acme.test/"}
KEY = ("acme", "site")
ALWAYS = {"from": "00:00", "to": "24:00"}  # a weekly window covering every moment


def window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(fields)


def at_msk(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    """A moment in November 2026, Moscow time (the 29th is a Sunday)."""
    return datetime.datetime(2026, 11, day, hour, minute, tzinfo=MSK)


def samples(metrics: MonitorMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = metrics.render()[0].decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


# --- when -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at_msk(29, 1, 59), False),
        (at_msk(29, 2), True),
        (at_msk(29, 3, 59), True),
        (at_msk(29, 4), False),
        (at_msk(28, 3), False),
    ],
)
def test_weekly_window_covers_its_hours_when_read_in_the_registry_zone(
    moment: datetime.datetime, expected: bool
):
    """`{days: sun, from: 02:00, to: 04:00}` is Sunday 02:00-04:00 Moscow time, whatever the
    zone of the moment asked about."""
    sunday_night = (window(days="sun", **{"from": "02:00", "to": "04:00"}),)
    utc = moment.astimezone(datetime.UTC)
    assert in_maintenance(sunday_night, utc, "Europe/Moscow") is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at_msk(27, 23), True),
        (at_msk(28, 1), True),
        (at_msk(28, 2), False),
        (at_msk(28, 23), False),
        (at_msk(27, 21, 59), False),
    ],
)
def test_weekly_window_runs_past_midnight_when_to_is_before_from(
    moment: datetime.datetime, expected: bool
):
    """Friday 22:00 to 02:00 covers Friday night and Saturday's first two hours only."""
    friday_night = (window(days="fri", **{"from": "22:00", "to": "02:00"}),)
    assert in_maintenance(friday_night, moment, "Europe/Moscow") is expected


def test_one_off_span_covers_start_to_end_when_given_with_offset():
    """A one-off span is [start, end): its end is already outside."""
    span = (window(start="2026-12-01T01:00:00+03:00", end="2026-12-01T03:00:00+03:00"),)
    assert in_maintenance(span, datetime.datetime(2026, 11, 30, 22, tzinfo=datetime.UTC), "UTC")
    assert not in_maintenance(span, datetime.datetime(2026, 12, 1, 0, tzinfo=datetime.UTC), "UTC")
    assert not in_maintenance(span, at_msk(30, 23), "UTC")


def test_window_end_is_next_morning_when_window_runs_past_midnight():
    """The end of an overnight window seen before midnight is the next day's `to`."""
    friday_night = window(days="fri", **{"from": "22:00", "to": "02:00"})
    end = window_end(friday_night, at_msk(27, 23), "Europe/Moscow")
    assert (end.day, end.hour, end.minute) == (28, 2, 0)


def test_windows_combine_when_set_at_defaults_organisation_and_channel():
    """A channel's windows are the defaults', its organisation's and its own."""
    registry = registry_with(
        [{**SITE, "maintenance": [{"days": "mon", "from": "01:00", "to": "02:00"}]}],
        maintenance=[{"days": "sun", "from": "02:00", "to": "04:00"}],
    )
    windows = windows_by_channel(registry)
    assert [w.days for w in windows[KEY]] == ["sun", "mon"]


# --- what the registry accepts ----------------------------------------------------------

BROKEN = [
    (
        {"days": "sun", "from": "02:00", "to": "04:00", "start": "2026-12-01T01:00:00+03:00"},
        "a maintenance window is weekly {days, from, to} or one-off {start, end}, not both",
    ),
    (
        {"start": "2026-12-01T01:00:00+03:00"},
        "a one-off maintenance window needs both start and end",
    ),
    (
        {"start": "2026-12-01T01:00:00", "end": "2026-12-01T03:00:00"},
        "2026-12-01T01:00:00 has no UTC offset: write it like 2026-12-01T01:00:00+03:00",
    ),
    (
        {"start": "2026-12-01T03:00:00+03:00", "end": "2026-12-01T01:00:00+03:00"},
        "start 2026-12-01T03:00:00+03:00 must be before end 2026-12-01T01:00:00+03:00",
    ),
    ({"days": "sun"}, "a maintenance window needs from and to (weekly, with optional days)"),
    ({"from": "02:00", "to": "02:00"}, "'from' and 'to' are both 02:00: the window is empty"),
    ({"days": "sunday", "from": "02:00", "to": "04:00"}, "invalid days 'sunday'"),
    ({"from": "2am", "to": "04:00"}, "invalid time '2am': use HH:MM, 00:00 to 24:00"),
]


@pytest.mark.parametrize(("fields", "message"), BROKEN)
def test_validate_names_the_problem_when_a_window_is_broken(
    tmp_path: Path, fields: dict[str, str], message: str
):
    """A broken window is reported with file, line, path and a message in words."""
    config = tmp_path / "channels.yaml"
    body = ", ".join(f"{k}: {v!r}" for k, v in fields.items())
    config.write_text(
        "version: 1\norganizations:\n  - id: acme\n    channels:\n"
        "      - id: site\n        kind: web\n        url: https://acme.test/\n"
        f"        maintenance:\n          - {{{body}}}\n"
    )
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(config)
    issue = raised.value.issues[0]  # a naive start and end are two errors
    assert issue.line == 9
    assert issue.path.startswith("organizations[acme].channels[site].maintenance[0]")
    assert message in issue.message


def test_validate_says_quote_it_when_yaml_reads_a_time_as_a_number(tmp_path: Path):
    """An unquoted 18:00 is the base-60 number 1080 to YAML 1.1: the error says to quote it."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        "version: 1\ndefaults:\n  maintenance:\n    - {days: sun, from: 18:00, to: '20:00'}\n"
        "organizations:\n  - id: acme\n"
    )
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(config)
    (issue,) = raised.value.issues
    assert issue.path == "defaults.maintenance[0].from"
    assert "quote it: YAML read this time as the number 1080" in issue.message


def test_unquoted_timestamps_accepted_when_yaml_reads_them_as_datetimes(tmp_path: Path):
    """YAML turns an unquoted ISO 8601 timestamp into a datetime; that is fine as is."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        "version: 1\norganizations:\n  - id: acme\n    maintenance:\n"
        "      - {start: 2026-12-01T01:00:00+03:00, end: 2026-12-01T03:00:00+03:00}\n"
    )
    (span,) = load_registry(config).organizations[0].maintenance
    assert span.start == datetime.datetime(2026, 12, 1, 1, tzinfo=MSK)


# --- what the monitor makes of it -----------------------------------------------------


def test_in_maintenance_gauge_is_one_when_inside_a_window_and_zero_outside():
    """`contact_channel_in_maintenance` follows the window, for every registry channel."""
    state = State(registry_with([{**SITE, "maintenance": [ALWAYS]}, {**SITE, "id": "other"}]))
    gauges = samples(MonitorMetrics(state), "contact_channel_in_maintenance")
    by_channel = {dict(labels)["channel"]: value for labels, value in gauges.items()}
    assert by_channel == {"site": 1.0, "other": 0.0}


def test_probes_counted_apart_when_run_inside_a_window():
    """A failed probe inside a window is result="maintenance", neither success nor failure."""
    state = State(registry_with([{**SITE, "maintenance": [ALWAYS]}]))
    state.record_channel(KEY, ProbeResult(False, "timeout", "no answer"))
    state.record_channel(KEY, ProbeResult(True))
    counts = samples(MonitorMetrics(state), "contact_probes_total")
    by_result = {dict(labels)["result"]: value for labels, value in counts.items()}
    assert by_result == {"success": 0.0, "failure": 0.0, "maintenance": 2.0}


def test_uptime_leaves_the_window_out_when_probes_fail_inside_it(tmp_path: Path):
    """Failures inside a window do not lower the history's uptime; those outside do count."""
    history = History(tmp_path / "history.sqlite3", 86400.0)
    now = time.time()
    span = {
        "start": datetime.datetime.fromtimestamp(now - 600, datetime.UTC).isoformat(),
        "end": datetime.datetime.fromtimestamp(now - 300, datetime.UTC).isoformat(),
    }
    state = State(registry_with([{**SITE, "maintenance": [span]}]), history)
    state.record_channel(KEY, ProbeResult(True, timestamp=now - 900))
    state.record_channel(KEY, ProbeResult(False, "timeout", timestamp=now - 500))
    state.record_channel(KEY, ProbeResult(False, "timeout", timestamp=now - 400))
    state.record_channel(KEY, ProbeResult(True, timestamp=now - 100))
    history.write_pending()
    try:
        assert history.uptime(*KEY, now - 3600) == 1.0
        state.record_channel(KEY, ProbeResult(False, "timeout", timestamp=now - 50))
        history.write_pending()
        assert history.uptime(*KEY, now - 3600) == pytest.approx(2 / 3)
    finally:
        history.close()


def incidents_around_a_window(
    tmp_path: Path, probes: list[tuple[bool, float]]
) -> list[tuple[float, float | None]]:
    """(started_at - now, ended_at - now) of the incidents after `probes` (success, seconds
    from now) on a channel with a window from 600 s to 300 s ago."""
    path = tmp_path / f"history-{len(list(tmp_path.glob('*.sqlite3')))}.sqlite3"
    history = History(path, 86400.0)  # a fresh database for every call
    now = time.time()
    span = {
        "start": datetime.datetime.fromtimestamp(now - 600, datetime.UTC).isoformat(),
        "end": datetime.datetime.fromtimestamp(now - 300, datetime.UTC).isoformat(),
    }
    state = State(registry_with([{**SITE, "maintenance": [span]}]), history)
    try:
        for success, offset in probes:
            reason = None if success else "timeout"
            state.record_channel(KEY, ProbeResult(success, reason, timestamp=now + offset))
        history.write_pending()
        return [
            (round(i.started_at - now), None if i.ended_at is None else round(i.ended_at - now))
            for i in history.incidents(*KEY)
        ]
    finally:
        history.close()


def test_no_incident_opens_when_channel_fails_only_inside_a_window(tmp_path: Path):
    """Down and back up again within the window: no incident at all."""
    probes = [(True, -900), (False, -550), (False, -500), (False, -450), (True, -400)]
    assert incidents_around_a_window(tmp_path, [*probes, (True, -100)]) == []


def test_incident_stays_open_when_channel_recovers_inside_a_window(tmp_path: Path):
    """Down before the window, up inside it: the incident closes at the first probe after
    the window, not inside it."""
    before = [(False, -900), (False, -800)]
    inside = [(True, -500), (True, -400)]
    after = [(True, -100)]
    assert incidents_around_a_window(tmp_path, [*before, *inside]) == [(-800, None)]
    assert incidents_around_a_window(tmp_path, [*before, *inside, *after]) == [(-800, -100)]


def test_incident_opens_after_the_window_when_channel_still_fails_after_it(tmp_path: Path):
    """Down inside the window and still down after it: the incident starts when a probe
    outside the window first sees it."""
    inside = [(True, -900), (False, -500), (False, -400)]
    assert incidents_around_a_window(tmp_path, inside) == []
    assert incidents_around_a_window(tmp_path, [*inside, (False, -100)]) == [(-100, None)]


def test_status_page_shows_maintenance_when_channel_is_inside_a_window():
    """The badge says maintenance and the note says until when, in the registry's zone."""
    state = State(registry_with([{**SITE, "maintenance": [ALWAYS]}, {**SITE, "id": "other"}]))
    state.record_channel(KEY, ProbeResult(False, "timeout", "no answer"))
    html = render_status_page(state, None)
    assert '<span class="badge maintenance">maintenance</span>' in html
    assert re.search(r"Maintenance until \d{4}-\d\d-\d\d 00:00 \(daily 00:00–24:00\)", html)
    assert "1 in maintenance" in html


# --- check (one-shot) -------------------------------------------------------------------


def check_registry_file(tmp_path: Path, url: str, maintenance: list[dict[str, str]]) -> Path:
    channel = {**SITE, "url": url, "maintenance": maintenance}
    other = {**SITE, "id": "other", "url": url}
    config = tmp_path / "r.yaml"
    registry = {"version": 1, "defaults": {"timeout": "2s"}}
    registry["organizations"] = [{"id": "acme", "channels": [channel, other]}]
    config.write_text(yaml.safe_dump(registry))
    return config


def test_check_exits_0_when_the_failing_channel_is_inside_a_window(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
):
    """A refused connection inside a window is planned work: exit 0, and the JSON says the
    result was in maintenance (and in which window); a channel outside it says not."""
    config = check_registry_file(tmp_path, f"http://127.0.0.1:{closed_port}/", [ALWAYS])
    assert main(["check", "--config", str(config), "--channel", "site", "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["success"], result["reason"]) == (False, "connect_refused")
    assert result["in_maintenance"] is True
    assert result["maintenance"] == "daily 00:00–24:00"


def test_check_exits_1_when_the_failing_channel_is_outside_its_window(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
):
    """A window that is over (a one-off span last year) excuses nothing."""
    span = {"start": "2025-01-01T01:00:00+03:00", "end": "2025-01-01T03:00:00+03:00"}
    config = check_registry_file(tmp_path, f"http://127.0.0.1:{closed_port}/", [span])
    assert main(["check", "--config", str(config), "--channel", "site", "--format", "json"]) == 1
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["in_maintenance"], result["maintenance"]) == (False, None)


def test_check_exits_1_when_another_channel_fails_outside_any_window(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
):
    """The window is the channel's own: the other channel, down too, still makes it 1."""
    config = check_registry_file(tmp_path, f"http://127.0.0.1:{closed_port}/", [ALWAYS])
    assert main(["check", "--config", str(config), "--format", "json"]) == 1
    results = {r["channel"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["site"]["in_maintenance"] is True
    assert results["other"]["in_maintenance"] is False


def test_check_table_says_maintenance_when_the_channel_is_inside_a_window(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
):
    """The table's RESULT names the window beside what was measured, and the summary counts
    the channels in maintenance."""
    config = check_registry_file(tmp_path, f"http://127.0.0.1:{closed_port}/", [ALWAYS])
    assert main(["check", "--config", str(config), "--channel", "site"]) == 0
    out = capsys.readouterr().out
    assert "maintenance (DOWN, daily 00:00–24:00)" in out
    assert "0/1 channels up; 1 in maintenance" in out
