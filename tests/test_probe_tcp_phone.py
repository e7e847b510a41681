"""The TCP prober against loopback listeners, and the phone prober's numbering-plan checks."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import PhoneChannel, TcpChannel
from monitor.probers import ProbeContext, probe_phone, probe_tcp


async def test_tcp_success_when_port_accepts(silent_server: Any, ctx: ProbeContext):
    """An accepting port is a success."""
    channel = TcpChannel(id="t", kind="tcp", host="127.0.0.1", port=silent_server.port)
    result = await probe_tcp(channel, ctx)
    assert result.success, result


async def test_tcp_connect_refused_when_port_is_closed(closed_port: int, ctx: ProbeContext):
    """A closed port fails with connect_refused."""
    channel = TcpChannel(id="t", kind="tcp", host="127.0.0.1", port=closed_port)
    result = await probe_tcp(channel, ctx)
    assert result.reason == "connect_refused"


async def test_tcp_tls_success_when_certificate_is_trusted(https_server: Any, ctx: ProbeContext):
    """With tls on, the handshake against the test CA succeeds."""
    channel = TcpChannel(id="t", kind="tcp", host="127.0.0.1", port=https_server.port, tls=True)
    result = await probe_tcp(channel, ctx)
    assert result.success, result


@pytest.mark.parametrize(
    ("written", "e164", "number_type", "extension"),
    [
        ("8 800 555-89-82", "+78005558982", "toll_free", None),
        ("+7 (495) 215-24-08", "+74952152408", "fixed_line", None),
        ("+7 958 400-00-05 доб. 76077", "+79584000005", "mobile", "76077"),
        ("8 (495) 215-29-94", "+74952152994", "fixed_line", None),
    ],
)
async def test_phone_details_when_number_is_valid(
    ctx: ProbeContext, written: str, e164: str, number_type: str, extension: str | None
):
    """A valid number reports its E.164 form, type and extension, and is not called up:
    nothing was dialled."""
    result = await probe_phone(PhoneChannel(id="p", kind="phone", phone=written), ctx)
    assert (result.success, result.reason, result.details["number_valid"]) == (None, None, True)
    assert (result.details["e164"], result.details["number_type"], result.details["extension"]) == (
        e164,
        number_type,
        extension,
    )


@pytest.mark.parametrize("written", ["8 800 555", "+7 (000) 000-00-00", "not a number"])
async def test_invalid_number_when_number_is_not_in_the_plan(ctx: ProbeContext, written: str):
    """A number outside the numbering plan is invalid_number, yet neither up nor down."""
    result = await probe_phone(PhoneChannel(id="p", kind="phone", phone=written), ctx)
    assert (result.success, result.reason) == (None, "invalid_number")
    assert result.details["number_valid"] is False
