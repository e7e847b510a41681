"""`check`'s table and summary line: every word names what was measured."""

from __future__ import annotations

import datetime
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from servers import HttpServer

from monitor.cli import main
from monitor.config import PhoneChannel, WebChannel
from monitor.model import ProbeResult
from monitor.report import check_table
from monitor.rounds import ChannelResult, Round

SITE = WebChannel(id="site", kind="web", url="https://acme.test/")
OLD_LINE = PhoneChannel(
    id="old-hotline", kind="phone", phone="8 800 234-70-00", status="deprecated", check="sip"
)
HOTLINE = PhoneChannel(id="hotline", kind="phone", phone="8 800 555-89-82")


def table_for(*results: tuple[object, ProbeResult]) -> str:
    return check_table(Round([ChannelResult("acme", c, r) for c, r in results]))  # type: ignore[arg-type]


def test_switched_off_line_not_called_up_when_it_refuses_the_test_call():
    """A deprecated line answering 404 is healthy, but it is not "up": it reads as switched
    off, refused as expected, and is counted apart from the channels that are up."""
    refused = ProbeResult(True, details={"sip_status_code": 404})
    out = table_for((SITE, ProbeResult(True)), (OLD_LINE, refused))
    row = next(line for line in out.splitlines() if "old-hotline" in line)
    assert "switched off · must not be published · refused as expected (SIP 404)" in row
    assert " up " not in row
    assert "1/1 channels up; 1 of 1 switched-off lines refuse calls as expected" in out


def test_switched_off_line_still_reachable_when_it_rings():
    """A deprecated line that rings is said to be still reachable, and not counted as up."""
    rings = ProbeResult(False, "deprecated_reachable", details={"sip_status_code": 180})
    out = table_for((OLD_LINE, rings))
    assert "STILL REACHABLE (SIP 180)" in out
    assert "0/0 channels up; 0 of 1 switched-off lines refuse calls as expected, 1 still" in out


@pytest.mark.parametrize("reason", ["timeout", "trunk_unreachable", "sip_auth_failed"])
def test_switched_off_line_not_proven_when_the_call_proved_nothing(reason: str):
    """A call that timed out or never reached the trunk says nothing about the line: the
    row says so with the reason, never that the line is still reachable."""
    out = table_for((OLD_LINE, ProbeResult(False, reason)))
    row = next(line for line in out.splitlines() if "old-hotline" in line)
    assert f"not proven: {reason}" in row
    assert "REACHABLE" not in out
    assert "0 of 1 switched-off lines refuse calls as expected, 1 not proven" in out


def test_numbering_check_counted_as_not_measured_when_nothing_was_dialled():
    """A numbering check is neither up nor down in the summary."""
    out = table_for((HOTLINE, ProbeResult(None, details={"number_valid": True})))
    assert "number valid · not dialled" in out
    assert "0/0 channels up (1 not measured" in out


def test_failure_outside_hours_reads_closed_when_the_channel_is_closed():
    """A chat that fails outside its published hours reads `closed (DOWN, open …)` and is
    counted apart: the daemon's alerts stay quiet then too."""
    chat = WebChannel.model_validate(
        {
            "id": "chat",
            "kind": "chat",
            "url": "https://acme.test/chat",
            "hours": {"days": "mon-fri", "from": "09:00", "to": "18:00"},
        }
    )
    failed = ChannelResult(
        "acme", chat, ProbeResult(False, "timeout"), closed="mon-fri 09:00–18:00"
    )
    out = check_table(Round([failed]))
    assert "closed (DOWN, open mon-fri 09:00–18:00)" in out
    assert "1 failed outside their published hours (expected)" in out


def test_closed_failure_is_no_problem_when_check_decides_its_exit_code():
    """`check` exits 0 for a failure outside the channel's hours, 1 for one inside."""
    from monitor.cli import _has_problems

    failed = ProbeResult(False, "timeout")
    closed = ChannelResult("acme", SITE, failed, closed="mon-fri 09:00–18:00")
    assert not _has_problems(Round([closed]))
    assert _has_problems(Round([ChannelResult("acme", SITE, failed)]))


def test_check_exits_0_when_the_only_failure_is_outside_hours(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """End to end: a chat open only on another weekday fails now, and `check` says closed
    with its hours and exits 0."""
    other_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][
        (datetime.datetime.now(datetime.UTC).weekday() + 3) % 7
    ]
    registry = tmp_path / "r.yaml"
    registry.write_text(
        "version: 1\ndefaults: {timezone: UTC}\norganizations:\n  - id: acme\n"
        "    channels:\n"
        f"      - {{id: chat, kind: chat, url: '{http_server.url('/gone')}',"
        f" hours: {{days: {other_day}, from: '09:00', to: '18:00'}}}}\n"
    )
    assert main(["check", "--config", str(registry), "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["success"], result["closed"]) == (False, f"{other_day} 09:00–18:00")


def test_check_keeps_per_host_concurrency_when_many_channels_share_a_host(
    raw_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`check` opens at most `per_host_concurrency` connections to one host at once, as
    the daemon does, so a round of many channels on one site does not trip its limits."""
    active, most = [0], [0]
    lock = threading.Lock()

    def slow_page(conn: socket.socket) -> None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        conn.recv(4096)
        time.sleep(0.2)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        with lock:
            active[0] -= 1
        conn.close()

    server = raw_server(slow_page)
    lines = "".join(
        f"      - {{id: page-{i}, kind: web, url: 'http://127.0.0.1:{server.port}/{i}'}}\n"
        for i in range(8)
    )
    registry = tmp_path / "r.yaml"
    registry.write_text(
        "version: 1\ndefaults: {per_host_concurrency: 2}\norganizations:\n  - id: acme\n"
        "    channels:\n" + lines
    )
    assert main(["check", "--config", str(registry), "--format", "json"]) == 0
    assert all(r["success"] for r in json.loads(capsys.readouterr().out)["results"])
    assert most[0] == 2
