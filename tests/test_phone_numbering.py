"""Issue 16, point 1: a numbering check dials nothing, so no view calls the line up or down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RunningDaemon, registry_with, wait_for
from test_state_metrics import value
from test_status_page import chromium

from monitor.cli import _has_problems, main
from monitor.config import PhoneChannel
from monitor.metrics import MonitorMetrics
from monitor.model import Finding, ProbeResult
from monitor.rounds import ChannelResult, Round
from monitor.state import State
from monitor.status_page import render_status_page
from monitor.web import channel_rows

ROOT = Path(__file__).parent.parent
HOTLINE = {"id": "hotline", "kind": "phone", "phone": "8 800 555-89-82"}
OLD = {"id": "old", "kind": "phone", "phone": "8 (800) 234-70-00", "status": "deprecated"}
HOTLINE_LABELS = {"org": "acme", "channel": "hotline", "kind": "phone", "service": "general"}
NOT_DIALLED = ProbeResult(None, details={"number_valid": True, "e164": "+78005558982"})


def test_no_success_up_or_uptime_series_when_number_only_checked():
    """A numbering result gives neither contact_probe_success nor contact_channel_up, however
    often it comes; contact_phone_number_valid says 1."""
    state = State(registry_with([HOTLINE], failure_threshold=1))
    for _ in range(3):
        state.record_channel(("acme", "hotline"), NOT_DIALLED)
    metrics = MonitorMetrics(state)
    assert value(metrics, "contact_probe_success", HOTLINE_LABELS) is None
    assert value(metrics, "contact_channel_up", HOTLINE_LABELS) is None
    assert value(metrics, "contact_phone_number_valid", HOTLINE_LABELS) == 1
    assert state.channels[("acme", "hotline")].up is None


def test_number_valid_is_0_when_number_is_not_in_the_plan():
    """A number the plan does not know (the loader stops it; a plan update may not) is 0."""
    state = State(registry_with([{**HOTLINE, "phone": "8 800 555"}]))
    assert value(MonitorMetrics(state), "contact_phone_number_valid", HOTLINE_LABELS) == 0


def test_check_json_says_success_null_when_phone_not_dialled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`check --format json`: success null, details.number_valid true, exit 0."""
    config = tmp_path / "r.yaml"
    config.write_text(
        "version: 1\norganizations:\n  - id: acme\n    channels:\n"
        "      - {id: hotline, kind: phone, phone: '8 800 555-89-82'}\n"
    )
    assert main(["check", "--config", str(config), "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["success"], result["details"]["number_valid"]) == (None, True)
    assert main(["check", "--config", str(config)]) == 0
    assert "number valid · not dialled" in capsys.readouterr().out


def test_check_has_problems_only_when_number_is_invalid():
    """`check` exits 1 for an invalid number and never for "not dialled"."""
    channel = PhoneChannel(**HOTLINE)
    fine = Round([ChannelResult("acme", channel, NOT_DIALLED)])
    invalid = ProbeResult(None, "invalid_number", "no such number", details={"number_valid": False})
    assert not _has_problems(fine)
    assert _has_problems(Round([ChannelResult("acme", channel, invalid)]))


def test_status_page_says_not_dialled_without_uptime_when_number_only_checked():
    """The row reads "number valid · not dialled", with no uptime figures and no bars; a
    deprecated line reads "switched off · must not be published" and where it is shown."""
    state = State(registry_with([HOTLINE, OLD], [{"id": "help", "url": "https://acme.test/"}]))
    state.record_channel(("acme", "hotline"), NOT_DIALLED)
    state.findings[("acme", "help")] = [
        Finding("deprecated_published", "acme", "help", "old", "+78002347000", "8 800 234-70-00")
    ]
    html = render_status_page(state, None)
    hotline = html[html.index('id="acme-hotline"') : html.index('id="acme-old"')]
    old = html[html.index('id="acme-old"') :]
    assert "number valid · not dialled" in hotline
    assert "switched off · must not be published · still shown on help" in old
    for row in (hotline, old):
        assert 'class="bars"' not in row[:3000]
        assert "30 d" not in row[:3000]
        assert "badge up" not in row[:3000]


def test_shipped_registry_shows_every_phone_not_dialled_when_checked(
    capsys: pytest.CaptureFixture[str],
):
    """On the Ozon registry, `check --format json` calls no phone up or down, and every one
    has a valid number."""
    main(["check", "--config", str(ROOT / "config" / "channels.yaml"), "--format", "json"])
    phones = [r for r in json.loads(capsys.readouterr().out)["results"] if r["kind"] == "phone"]
    assert len(phones) == 7
    assert all(r["success"] is None and r["details"]["number_valid"] for r in phones)


def test_browser_shows_every_shipped_phone_not_dialled_when_daemon_runs(
    tmp_path: Path, start_daemon: Any
):
    """The status page of the daemon on the Ozon registry, as Chromium renders it: every
    phone line "number valid · not dialled" or "switched off", none with an uptime bar."""
    data = yaml.safe_load((ROOT / "config" / "channels.yaml").read_text())
    data["defaults"].update(interval="2s", timeout="1s")
    config = tmp_path / "channels.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    daemon: RunningDaemon = start_daemon(config)
    wait_for(
        lambda: len(daemon.samples("contact_probe_last_run_timestamp_seconds")) == 18,
        "every channel probed",
        timeout=30,
    )
    dom = chromium(tmp_path, "--dump-dom", daemon.url + "/").stdout
    phones = [c for c in data["organizations"][0]["channels"] if c["kind"] == "phone"]
    for channel in phones:
        row = dom[dom.index(f'id="ozon-{channel["id"]}"') :][:2500]
        row = (
            row[: row.index('<div class="channel"', 10)]
            if '<div class="channel"' in row[10:]
            else row
        )
        expected = (
            "switched off · must not be published"
            if channel.get("status") == "deprecated"
            else "number valid · not dialled"
        )
        assert expected in row, channel["id"]
        assert 'class="bars"' not in row, channel["id"]
        assert "badge up" not in row, channel["id"]


def test_api_says_not_dialled_when_number_only_checked():
    """/api/v1/channels: success null and the note "number valid · not dialled"; a deprecated
    line's note names the pages that still show it."""
    state = State(registry_with([HOTLINE, OLD], [{"id": "help", "url": "https://acme.test/"}]))
    state.record_channel(("acme", "hotline"), NOT_DIALLED)
    state.findings[("acme", "help")] = [
        Finding("deprecated_published", "acme", "help", "old", "+78002347000", "8 800 234-70-00")
    ]
    rows = {row.channel: row for row in channel_rows(state)}
    assert (rows["hotline"].success, rows["hotline"].up) == (None, None)
    assert rows["hotline"].note == "number valid · not dialled"
    assert rows["old"].note == "switched off · must not be published · still shown on help"


def test_status_page_shows_sip_answer_when_line_was_called():
    """A line on SIP test calls shows its SIP code, post-dial delay and Q.850 cause."""
    line = {**HOTLINE, "check": "sip"}
    state = State(registry_with([line], sip={"trunk": "sip:127.0.0.1"}))
    called = ProbeResult(
        False,
        "busy",
        "the call was refused: SIP 486, Q.850 cause 17",
        details={"sip_status_code": 486, "q850_cause": 17},
    )
    state.record_channel(("acme", "hotline"), called)
    html = render_status_page(state, None)
    assert "SIP 486 · Q.850 cause 17" in html
    ringing = ProbeResult(True, details={"sip_status_code": 180, "post_dial_delay_seconds": 1.234})
    state.record_channel(("acme", "hotline"), ringing)
    assert "SIP 180 · post-dial 1.23 s" in render_status_page(state, None)


def test_api_never_says_a_switched_off_line_is_down_when_its_test_calls_time_out():
    """A deprecated line on `check: sip` whose calls time out proved nothing: the API gives
    `up: null` (never down, never up), the reason stays in the row."""
    old_sip = {**OLD, "check": "sip"}
    defaults = {"sip": {"trunk": "sip:127.0.0.1:5060"}, "failure_threshold": 1}
    state = State(registry_with([old_sip], **defaults))
    for _ in range(2):
        state.record_channel(("acme", "old"), ProbeResult(False, "timeout", "no answer"))
    (row,) = channel_rows(state)
    assert (row.up, row.success, row.reason) == (None, False, "timeout")
