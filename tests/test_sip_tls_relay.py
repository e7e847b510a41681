"""The one-call loopback relay that gives Debian's SIPp (no OpenSSL) a TLS trunk
(monitor/sip/tls_relay.py), against a real TLS server on loopback (trustme CA)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from monitor.sip import tls_relay
from monitor.sip.tls_relay import TrunkConnectError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()
    writer.close()


async def through_relay(
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    trunk: Handler,
    talk: Callable[[int], Awaitable[object]],
    loopback: str = "127.0.0.1",
) -> object:
    """Runs `trunk` as a TLS server, a relay to it on `loopback`, and `talk(relay_port)`;
    its result."""
    server = await asyncio.start_server(trunk, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    try:
        relay = tls_relay.tls_relay("127.0.0.1", port, client_tls, 5.0, loopback)
        async with relay as relay_port:
            return await asyncio.wait_for(talk(relay_port), 5.0)
    finally:
        server.close()


@pytest.mark.parametrize("loopback", ["127.0.0.1", "::1"])
def test_bytes_cross_unchanged_both_ways_when_trunk_echoes(
    tls_localhost: ssl.SSLContext, client_tls: ssl.SSLContext, loopback: str
):
    """What SIPp writes reaches the trunk inside TLS, and the trunk's answer comes back; the
    relay listens on the loopback of SIPp's address family."""

    async def talk(port: int) -> bytes:
        reader, writer = await asyncio.open_connection(loopback, port)
        message = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        writer.write(message)
        answer = await reader.readexactly(len(message))
        writer.close()
        return answer

    answer = asyncio.run(through_relay(tls_localhost, client_tls, echo, talk, loopback))
    assert answer.startswith(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n")


def test_sipp_side_closed_when_trunk_closes(
    tls_localhost: ssl.SSLContext, client_tls: ssl.SSLContext
):
    """The trunk hanging up ends SIPp's connection too."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    async def talk(port: int) -> bytes:
        reader, _ = await asyncio.open_connection("127.0.0.1", port)
        return await reader.read()  # to end of stream

    assert asyncio.run(through_relay(tls_localhost, client_tls, hang_up, talk)) == b"bye"


def test_second_connection_closed_at_once_when_call_is_connected(
    tls_localhost: ssl.SSLContext, client_tls: ssl.SSLContext
):
    """The relay carries one connection, the call's; another gets nothing."""

    async def talk(port: int) -> bytes:
        _, first = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.1)
        second_reader, second = await asyncio.open_connection("127.0.0.1", port)
        second.write(b"INVITE")
        try:
            return await second_reader.read()
        except ConnectionResetError:
            return b""
        finally:
            first.close()

    assert asyncio.run(through_relay(tls_localhost, client_tls, echo, talk)) == b""


def test_copy_stops_at_the_cap_when_trunk_floods(
    tls_localhost: ssl.SSLContext, client_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
):
    """A trunk that sends without end is read up to MAX_RELAY_BYTES, then cut off."""
    monkeypatch.setattr(tls_relay, "MAX_RELAY_BYTES", 10_000)

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(b"x" * 4096)
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    async def talk(port: int) -> int:
        reader, _ = await asyncio.open_connection("127.0.0.1", port)
        received = 0
        try:
            while data := await reader.read(65536):
                received += len(data)
        except ConnectionResetError:
            pass
        return received

    assert asyncio.run(through_relay(tls_localhost, client_tls, flood, talk)) <= 10_000


def test_nothing_listens_when_the_call_is_over(
    tls_localhost: ssl.SSLContext, client_tls: ssl.SSLContext
):
    """Once the block ends the relay's port is closed: it never outlives the call."""

    async def its_port(port: int) -> int:
        return port

    async def run() -> None:
        port = await through_relay(tls_localhost, client_tls, echo, its_port)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(run())


def test_connect_error_chains_the_certificate_failure_when_ca_is_unknown(
    tls_localhost: ssl.SSLContext,
):
    """A trunk whose certificate no trusted CA signed raises TrunkConnectError, the
    verification failure as its cause, before any relay port exists."""

    async def talk(port: int) -> None:
        raise AssertionError("the relay must not start")

    with pytest.raises(TrunkConnectError) as failure:
        asyncio.run(through_relay(tls_localhost, ssl.create_default_context(), echo, talk))
    assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)
