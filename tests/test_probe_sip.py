"""SIP test calls and OPTIONS against a real SIP network on loopback: Kamailio as the trunk
(digest authentication) and SIPp far ends that ring, play early media, answer, refuse or
stay silent (tests/sip_network.py)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningDaemon, registry_with, wait_for
from sip_network import FAR_ENDS as BEHAVIOURS
from sip_network import PASSWORD, SipNetwork
from test_state_metrics import value

from monitor.cli import main
from monitor.config import Defaults, PhoneChannel
from monitor.history import History
from monitor.metrics import MonitorMetrics
from monitor.model import ProbeResult
from monitor.probers import make_probe_context, probe_channel
from monitor.scheduler import channel_interval
from monitor.sip.budget import CallBudget
from monitor.state import State
from monitor.status_page import render_status_page

TIMEOUT = 3.0


@pytest.fixture(autouse=True)
def sip_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIP_PASSWORD", PASSWORD)


def sip_defaults(
    network: SipNetwork, transport: str = "udp", host: str = "127.0.0.1", **sip: object
) -> Defaults:
    return Defaults.model_validate(
        {
            "timeout": f"{TIMEOUT}s",
            "sip": {
                "trunk": network.trunk(transport, host),
                "from": "sip:monitor@monitor.test",
                "auth": {"username": "monitor", "password_env": "SIP_PASSWORD"},
                **sip,
            },
        }
    )


def channel(network: SipNetwork, case: str, **extra: object) -> PhoneChannel:
    number = network.numbers[BEHAVIOURS[case]]
    return PhoneChannel(id=case, kind="phone", phone=number, check="sip", **extra)


async def call_all(network: SipNetwork, tmp: Path, **extra: object) -> dict[str, ProbeResult]:
    ctx = make_probe_context(sip_defaults(network), tmp, call_budget=CallBudget())
    cases = list(BEHAVIOURS)
    results = await asyncio.gather(
        *(probe_channel(channel(network, c, **extra), ctx) for c in cases)
    )
    return dict(zip(cases, results, strict=True))


@pytest.fixture(scope="module")
def calls(sip_network: SipNetwork, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One test call per far end, all at once (the module's main fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIP_PASSWORD", PASSWORD)
        return asyncio.run(call_all(sip_network, tmp_path_factory.mktemp("calls")))


@pytest.mark.parametrize(
    ("case", "success", "reason", "status", "q850"),
    [
        ("rings", True, None, 180, None),
        ("early-media", True, None, 183, None),
        ("answers", True, None, 200, None),
        ("not-found", False, "number_not_in_service", 404, None),
        ("gone", False, "number_not_in_service", 410, 1),
        ("busy", False, "busy", 486, 17),
        ("unavailable", False, "no_answer", 480, 18),
        ("trunk-down", False, "trunk_unavailable", 503, None),
        ("silent", False, "timeout", None, None),
    ],
)
def test_reason_status_and_cause_when_far_end_behaves_so(
    calls: dict, case: str, success: bool, reason: str | None, status: int | None, q850: int | None
):
    """Each far end's behaviour gives its reason, SIP status code and Q.850 cause."""
    result = calls[case]
    assert (result.success, result.reason) == (success, reason), result
    assert result.details.get("sip_status_code") == status
    assert result.details.get("q850_cause") == q850


@pytest.mark.parametrize(
    ("case", "ended_with"), [("rings", "CANCEL"), ("early-media", "CANCEL"), ("answers", "BYE")]
)
def test_call_torn_down_at_once_when_line_is_reached(calls: dict, case: str, ended_with: str):
    """Ringing or early media is cancelled, an answer hung up: nobody is talked to."""
    assert calls[case].details["ended_with"] == ended_with
    assert calls[case].duration_seconds < TIMEOUT / 2


@pytest.mark.parametrize("case", ["rings", "early-media", "answers"])
def test_post_dial_delay_measured_when_line_is_reached(calls: dict, case: str):
    """Reaching the line measures the post-dial delay, INVITE to first ringing or answer."""
    assert 0 < calls[case].details["post_dial_delay_seconds"] < TIMEOUT


def test_silent_far_end_ends_within_timeout_when_nothing_answers(calls: dict):
    """A far end that never answers is `timeout` inside the probe's own deadline."""
    assert calls["silent"].duration_seconds < TIMEOUT + 0.5


def test_sip_metrics_exported_when_calls_were_made(calls: dict):
    """The status code, post-dial delay and Q.850 cause reach /metrics."""
    cases = list(BEHAVIOURS)
    phones = [{"id": c, "kind": "phone", "phone": "8 800 555-89-82"} for c in cases]
    state = State(registry_with(phones))
    for case in cases:
        state.record_channel(("acme", case), calls[case])
    metrics = MonitorMetrics(state)

    def labels(case: str) -> dict[str, str]:
        return {"org": "acme", "channel": case, "kind": "phone", "service": "general"}

    assert value(metrics, "contact_probe_sip_status_code", labels("busy")) == 486
    assert value(metrics, "contact_probe_sip_q850_cause", labels("busy")) == 17
    assert value(metrics, "contact_probe_success", labels("rings")) == 1
    delay = value(metrics, "contact_probe_sip_post_dial_delay_seconds", labels("rings"))
    assert delay is not None
    assert 0 < delay < TIMEOUT
    assert value(metrics, "contact_probe_sip_status_code", labels("silent")) is None


def test_deprecated_number_is_healthy_when_not_in_service(sip_network: SipNetwork, tmp_path):
    """A switched-off number that answers 404/410 is in the expected state."""
    ctx = make_probe_context(sip_defaults(sip_network), tmp_path, call_budget=CallBudget())
    for case in ("not-found", "gone"):
        old = channel(sip_network, case, status="deprecated")
        result = asyncio.run(probe_channel(old, ctx))
        assert (result.success, result.reason) == (True, None), result


@pytest.mark.parametrize("case", ["rings", "answers"])
def test_deprecated_reachable_when_switched_off_number_still_rings(
    sip_network: SipNetwork, tmp_path: Path, case: str
):
    """A deprecated number that still rings or answers is the finding deprecated_reachable."""
    ctx = make_probe_context(sip_defaults(sip_network), tmp_path, call_budget=CallBudget())
    result = asyncio.run(probe_channel(channel(sip_network, case, status="deprecated"), ctx))
    assert (result.success, result.reason) == (False, "deprecated_reachable")


def test_call_reaches_line_when_trunk_is_tcp(sip_network: SipNetwork, tmp_path: Path):
    """The same call over TCP to the trunk."""
    ctx = make_probe_context(sip_defaults(sip_network, "tcp"), tmp_path, call_budget=CallBudget())
    result = asyncio.run(probe_channel(channel(sip_network, "rings"), ctx))
    assert (result.success, result.details["sip_status_code"]) == (True, 180)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_call_reaches_line_when_trunk_is_an_ipv6_literal(
    sip_network: SipNetwork, tmp_path: Path, transport: str
):
    """`sip:[::1]:port`: the IPv6 literal reaches the Request-URI intact (its brackets are
    not a SIPp keyword) and the call rings, over UDP and TCP."""
    defaults = sip_defaults(sip_network, transport, host="::1")
    ctx = make_probe_context(defaults, tmp_path, call_budget=CallBudget())
    result = asyncio.run(probe_channel(channel(sip_network, "rings"), ctx))
    assert (result.success, result.details.get("sip_status_code")) == (True, 180), result


def test_options_up_when_trunk_is_an_ipv6_literal(sip_network: SipNetwork, tmp_path: Path):
    """OPTIONS to `sip:[::1]:port` gets the trunk's 200."""
    defaults = sip_defaults(sip_network, host="::1")
    ctx = make_probe_context(defaults, tmp_path, call_budget=CallBudget())
    line = channel(sip_network, "rings", sip={"mode": "options"})
    result = asyncio.run(probe_channel(line, ctx))
    assert (result.success, result.details.get("sip_status_code")) == (True, 200), result


def test_auth_failed_when_password_is_wrong(
    sip_network: SipNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A wrong digest password is challenged again: sip_auth_failed, never "up"."""
    monkeypatch.setenv("SIP_PASSWORD", "wrong")
    ctx = make_probe_context(sip_defaults(sip_network), tmp_path, call_budget=CallBudget())
    result = asyncio.run(probe_channel(channel(sip_network, "rings"), ctx))
    assert (result.success, result.reason, result.details["sip_status_code"]) == (
        False,
        "sip_auth_failed",
        407,
    )


def test_fails_with_clear_reason_when_password_env_is_unset(
    sip_network: SipNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """No password in the environment: sip_auth_missing, and nothing is dialled."""
    monkeypatch.delenv("SIP_PASSWORD")
    budget = CallBudget()
    ctx = make_probe_context(sip_defaults(sip_network), tmp_path, call_budget=budget)
    result = asyncio.run(probe_channel(channel(sip_network, "rings"), ctx))
    assert (result.success, result.reason) == (False, "sip_auth_missing")
    assert budget.spend("any", 1) == (True, 0)


def test_options_up_when_trunk_answers_200(sip_network: SipNetwork, tmp_path: Path):
    """`sip.mode: options` keeps the trunk alive: 200 is up."""
    ctx = make_probe_context(sip_defaults(sip_network), tmp_path, call_budget=CallBudget())
    result = asyncio.run(probe_channel(channel(sip_network, "rings", sip={"mode": "options"}), ctx))
    assert (result.success, result.details["sip_status_code"]) == (True, 200)


def test_options_fails_with_code_when_trunk_refuses(
    sip_network: SipNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Anything but 200 to OPTIONS fails with that code."""
    monkeypatch.setenv("SIP_PASSWORD", "wrong")
    ctx = make_probe_context(sip_defaults(sip_network), tmp_path, call_budget=CallBudget())
    result = asyncio.run(probe_channel(channel(sip_network, "rings", sip={"mode": "options"}), ctx))
    assert (result.success, result.details["sip_status_code"]) == (False, 407)


def test_budget_holds_across_restart_when_calls_per_day_are_spent(
    sip_network: SipNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """With max_calls_per_day 2, two `check` runs call and the third, a new process reading
    the same history database, is skipped: not failed, and nothing is dialled."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "defaults": {
                    "timeout": f"{TIMEOUT}s",
                    "sip": {
                        "trunk": sip_network.trunk(),
                        "auth": {"username": "monitor", "password_env": "SIP_PASSWORD"},
                        "max_calls_per_day": 2,
                    },
                },
                "organizations": [
                    {
                        "id": "acme",
                        "channels": [
                            {
                                "id": "hotline",
                                "kind": "phone",
                                "phone": sip_network.numbers["ring"],
                                "check": "sip",
                            }
                        ],
                    }
                ],
            }
        )
    )
    outcomes = []
    for _ in range(3):
        code = main(["check", "--config", str(config), "--format", "json"])
        (result,) = json.loads(capsys.readouterr().out)["results"]
        outcomes.append((code, result["success"], result["reason"]))
    assert outcomes == [(0, True, None), (0, True, None), (0, None, "call_budget_exhausted")]
    assert (tmp_path / "history.sqlite3").exists()


def test_skip_keeps_last_measurement_when_budget_is_spent():
    """A skipped call is counted as skipped and leaves the last measured state in place."""
    state = State(registry_with([{"id": "h", "kind": "phone", "phone": "8 800 555-89-82"}]))
    key = ("acme", "h")
    state.record_channel(key, ProbeResult(True, details={"sip_status_code": 180}))
    skipped = ProbeResult(None, "call_budget_exhausted", details={"skipped": True})
    state.record_channel(key, skipped)
    assert state.channels[key].result.success is True
    assert (state.channels[key].probes_skipped, state.channels[key].skipped) == (1, skipped)


def daemon_registry(network: SipNetwork, path: Path, max_calls: int) -> Path:
    """A registry with one line that rings, probed every TIMEOUT seconds (an interval is
    never shorter than the timeout), `max_calls` calls a day, and a push channel (so every
    phone-line family is in the exposition)."""
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "defaults": {
                    "interval": f"{TIMEOUT}s",
                    "timeout": f"{TIMEOUT}s",
                    "sip": {
                        "trunk": network.trunk(),
                        "auth": {"username": "monitor", "password_env": "SIP_PASSWORD"},
                        "max_calls_per_day": max_calls,
                    },
                },
                "organizations": [
                    {
                        "id": "acme",
                        "channels": [
                            {
                                "id": "hotline",
                                "kind": "phone",
                                "phone": network.numbers["ring"],
                                "check": "sip",
                                "interval": f"{TIMEOUT}s",
                            },
                            {"id": "plain", "kind": "phone", "phone": "8 800 555-89-82"},
                        ],
                    }
                ],
            }
        )
    )
    return path


def test_daemon_exports_sip_metrics_that_promtool_accepts_when_line_rings(
    sip_network: SipNetwork, tmp_path: Path, start_daemon: Any
):
    """The daemon calls the line on its schedule; /metrics has the SIP status code, the
    post-dial delay and number validity, and `promtool check metrics` accepts it."""
    config = daemon_registry(sip_network, tmp_path / "channels.yaml", 48)
    daemon: RunningDaemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_probe_sip_status_code", channel="hotline"), "a call")
    text = daemon.metrics_text()
    assert daemon.value("contact_probe_sip_status_code", text, channel="hotline") == 180
    assert daemon.value("contact_probe_success", text, channel="hotline") == 1
    assert daemon.value("contact_probe_sip_post_dial_delay_seconds", text, channel="hotline")
    assert daemon.value("contact_phone_number_valid", text, channel="plain") == 1
    assert daemon.value("contact_probe_success", text, channel="plain") is None
    checked = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    complaints = [
        line
        for line in (checked.stdout + checked.stderr).splitlines()
        if "contact_probe_sip" in line or "contact_phone" in line or "contact_push" in line
    ]
    assert complaints == []


def test_budget_holds_across_daemon_restart_when_calls_are_spent(
    sip_network: SipNetwork, tmp_path: Path, start_daemon: Any
):
    """With max_calls_per_day 2 the daemon calls twice, then skips; restarted on the same
    history database it makes no further call, and the skips are no failures."""
    config = daemon_registry(sip_network, tmp_path / "channels.yaml", 2)
    first: RunningDaemon = start_daemon(config)

    def skipped(daemon: RunningDaemon) -> float | None:
        return daemon.value(
            "contact_probes_skipped_total", channel="hotline", reason="call_budget_exhausted"
        )

    wait_for(lambda: skipped(first), "budget spent", timeout=20)
    assert first.value("contact_probes_total", channel="hotline", result="success") == 2
    assert first.stop() == 0
    second: RunningDaemon = start_daemon(config)
    wait_for(lambda: skipped(second), "skipped after restart", timeout=20)
    text = second.metrics_text()
    assert second.value("contact_probes_total", text, channel="hotline", result="success") == 0
    assert second.value("contact_probes_total", text, channel="hotline", result="failure") == 0
    assert second.value("contact_probe_success", text, channel="hotline") is None
    detail = second.get("/api/v1/channels/acme/hotline").json()
    assert (detail["success"], detail["reason"]) == (None, "call_budget_exhausted")


def test_check_reports_finding_and_exits_1_when_deprecated_line_rings(
    sip_network: SipNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`check` on a deprecated number that still rings: a deprecated_reachable finding with
    the SIP answer as evidence, and exit 1."""
    config = daemon_registry(sip_network, tmp_path / "channels.yaml", 5)
    data = json.loads(config.read_text())
    data["organizations"][0]["channels"][0]["status"] = "deprecated"
    config.write_text(json.dumps(data))
    assert main(["check", "--config", str(config), "--format", "json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["type"] == "deprecated_reachable"
    assert (finding["channel"], finding["evidence"]) == ("hotline", "SIP 180")


@pytest.fixture
def garbage_trunk() -> Iterator[int]:
    """A UDP "trunk" that answers every datagram with bytes that are not SIP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            sock.sendto(b"SIP/2.0 2OO OK\r\n\xff\xfe" + bytes(range(256)) * 4, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


@pytest.mark.parametrize(
    ("peer", "reason"),
    [("garbage-udp", "timeout"), ("closed-udp", "timeout"), ("closed-tcp", "trunk_unreachable")],
)
def test_line_never_up_and_probe_ends_in_time_when_trunk_is_broken(
    tmp_path: Path, garbage_trunk: int, closed_port: int, peer: str, reason: str
):
    """A trunk that answers garbage or nothing, or refuses TCP, never makes a line look up,
    and the probe ends within its timeout with timeout or trunk_unreachable."""
    port, transport = {
        "garbage-udp": (garbage_trunk, "udp"),
        "closed-udp": (closed_port, "udp"),
        "closed-tcp": (closed_port, "tcp"),
    }[peer]
    defaults = Defaults.model_validate(
        {"timeout": "2s", "sip": {"trunk": f"sip:127.0.0.1:{port};transport={transport}"}}
    )
    ctx = make_probe_context(defaults, tmp_path, call_budget=CallBudget())
    line = PhoneChannel(id="h", kind="phone", phone="8 800 555-89-82", check="sip")
    result = asyncio.run(probe_channel(line, ctx))
    assert result.success is False
    print(peer, result.reason, result.message)
    assert result.reason in ("timeout", "trunk_unreachable"), result
    assert result.duration_seconds < 2.5


@pytest.mark.parametrize(
    ("channel_extra", "sip_extra", "expected"),
    [
        ({}, {}, 1800.0),  # 48 calls a day: every 30 minutes
        ({"sip": {"max_calls_per_day": 4}}, {}, 21600.0),
        ({"interval": "10s"}, {}, 10.0),  # an interval of its own is kept
        ({"sip": {"mode": "options"}}, {}, 60.0),  # OPTIONS cost nobody anything
        ({}, {"max_calls_per_day": 0}, 60.0),
    ],
)
def test_calls_spread_over_the_day_when_sip_line_has_no_interval(
    channel_extra: dict, sip_extra: dict, expected: float
):
    """Without an interval of its own, a SIP line is called every day/max_calls_per_day."""
    defaults = Defaults.model_validate({"sip": {"trunk": "sip:127.0.0.1", **sip_extra}})
    line = PhoneChannel.model_validate(
        {"id": "h", "kind": "phone", "phone": "8 800 555-89-82", "check": "sip", **channel_extra}
    )
    assert channel_interval(line, defaults) == expected


# --- deprecated_reachable in the daemon ---------------------------------------------------

OLD_LINE = {"id": "old", "kind": "phone", "phone": "8 800 234-70-00", "status": "deprecated"}
CALL_FINDING = {"org": "acme", "source": "sip-test-call", "type": "deprecated_reachable"}


def rang(code: int = 180) -> ProbeResult:
    return ProbeResult(
        False,
        "deprecated_reachable",
        f"the deprecated number still answers the test call (SIP {code})",
        details={"e164": "+78002347000", "sip_status_code": code},
    )


def test_deprecated_reachable_raised_by_state_when_deprecated_line_rings():
    """The daemon's state raises the same finding `check` prints, counted in
    contact_drift_findings under the source `sip-test-call`."""
    state = State(registry_with([{**OLD_LINE, "check": "sip"}]))
    metrics = MonitorMetrics(state)
    assert value(metrics, "contact_drift_findings", CALL_FINDING) == 0
    state.record_channel(("acme", "old"), rang())
    (finding,) = state.all_findings()
    assert finding.to_json() == {
        "type": "deprecated_reachable",
        "org": "acme",
        "channel": "old",
        "source": "sip-test-call",
        "contact": "+78002347000",
        "evidence": "SIP 180",
    }
    assert value(metrics, "contact_drift_findings", CALL_FINDING) == 1


def test_deprecated_reachable_kept_when_a_call_proves_nothing():
    """A timeout or a trunk that is down says nothing about the line: the finding stays."""
    state = State(registry_with([{**OLD_LINE, "check": "sip"}]))
    state.record_channel(("acme", "old"), rang())
    state.record_channel(("acme", "old"), ProbeResult(False, "trunk_unavailable", "SIP 503"))
    state.record_channel(("acme", "old"), ProbeResult(False, "timeout", "no final answer"))
    assert [f.type for f in state.all_findings()] == ["deprecated_reachable"]


def test_deprecated_reachable_cleared_when_line_is_out_of_service_again(tmp_path: Path):
    """A call answered 404/410 (the probe succeeds) clears it; the history's findings log
    has it raised and cleared."""
    history = History(tmp_path / "h.sqlite3", 86400.0)
    state = State(registry_with([{**OLD_LINE, "check": "sip"}]), history)
    metrics = MonitorMetrics(state)
    try:
        state.record_channel(("acme", "old"), rang())
        state.record_channel(("acme", "old"), ProbeResult(True, details={"sip_status_code": 404}))
        assert state.all_findings() == []
        assert value(metrics, "contact_drift_findings", CALL_FINDING) == 0
        history.write_pending()
        (logged,) = history.findings_log()
        assert (logged.finding.type, logged.finding.source) == (
            "deprecated_reachable",
            "sip-test-call",
        )
        assert logged.cleared_at is not None
    finally:
        history.close()


def test_deprecated_reachable_cleared_when_reload_makes_the_line_active():
    """A line the registry no longer calls deprecated cannot be deprecated_reachable."""
    state = State(registry_with([{**OLD_LINE, "check": "sip"}]))
    state.record_channel(("acme", "old"), rang())
    state.set_registry(registry_with([{**OLD_LINE, "check": "sip", "status": "active"}]))
    assert state.all_findings() == []


def test_daemon_serves_deprecated_reachable_finding_until_line_is_switched_off(
    sip_network: SipNetwork, tmp_path: Path, start_daemon: Any
):
    """A deprecated line that rings is in /api/v1/findings and contact_drift_findings; once
    the number answers 404 the finding clears."""
    config = daemon_registry(sip_network, tmp_path / "channels.yaml", 1000)
    data = json.loads(config.read_text())
    data["organizations"][0]["channels"][0]["status"] = "deprecated"
    config.write_text(json.dumps(data))
    daemon: RunningDaemon = start_daemon(config)
    labels = {"source": "sip-test-call", "type": "deprecated_reachable"}

    def api_findings() -> list[dict[str, Any]]:
        return [f for f in daemon.get("/api/v1/findings").json() if f["source"] == "sip-test-call"]

    wait_for(lambda: daemon.value("contact_drift_findings", **labels) == 1, "finding raised")
    (finding,) = api_findings()
    assert (finding["type"], finding["channel"], finding["evidence"]) == (
        "deprecated_reachable",
        "hotline",
        "SIP 180",
    )

    data["organizations"][0]["channels"][0]["phone"] = sip_network.numbers[BEHAVIOURS["not-found"]]
    config.write_text(json.dumps(data))
    wait_for(lambda: daemon.value("contact_drift_findings", **labels) == 0, "finding cleared", 30)
    assert api_findings() == []


def test_status_page_says_the_line_still_rings_when_deprecated_reachable_is_raised():
    """The finding reads as a ringing line with the SIP answer, not as an unreadable page."""
    state = State(registry_with([{**OLD_LINE, "check": "sip"}]))
    state.record_channel(("acme", "old"), rang(183))
    html = render_status_page(state, None)
    assert re.search(r"Deprecated 8 800 234-70-00 still rings</span>\s*\(acme/old\)", html)
    assert '<span class="evidence">SIP 183</span>' in html
    assert "cannot be read" not in html
