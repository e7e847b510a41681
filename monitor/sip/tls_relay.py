"""SIP over TLS for a SIPp built without OpenSSL (Debian's): a loopback relay for one call.

SIP over TLS is SIP over TCP inside a TLS connection (RFC 3261 §18 and §26.2, RFC 5630):
the framing is TCP's, so SIPp speaks TCP to a relay on 127.0.0.1 and the relay carries the
bytes, unchanged, inside a TLS connection to the trunk made with Python's `ssl` (OpenSSL).
The TLS handshake, with the trunk's certificate and host name verified and the trunk host
as SNI, happens BEFORE SIPp starts: a trunk that fails it is never dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

__all__ = ["MAX_RELAY_BYTES", "TrunkConnectError", "tls_relay"]

MAX_RELAY_BYTES = 1024 * 1024  # per direction: one test call is a few KiB of SIP
_CHUNK = 64 * 1024


class TrunkConnectError(Exception):
    """The TLS connection to the trunk could not be made (refused, unreachable, handshake
    or certificate rejected): nothing was dialled. The cause (`OSError`, `ssl.SSLError`,
    `TimeoutError`) is chained as `__cause__`."""


@contextlib.asynccontextmanager
async def tls_relay(
    host: str, port: int, context: ssl.SSLContext, seconds: float, loopback: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """Connects to the trunk `host`:`port` over TLS (SNI and verified name = `host`) within
    `seconds`, then yields the port of a relay on `loopback` (127.0.0.1, or ::1 for a SIPp
    bound to an IPv6 address) that accepts ONE TCP connection and pipes it both ways to the
    trunk (at most `MAX_RELAY_BYTES` each way; either side closing closes both). Everything
    is closed when the block ends.

    Raises `TrunkConnectError` when the connection or the handshake fails or takes longer
    than `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            up_reader, up_writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host
            )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        raise TrunkConnectError(f"TLS to {host}:{port} failed: {exc}") from exc
    pipes: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = [up_writer]

    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if pipes:  # one connection only: the call's
            writer.transport.abort()
            return
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        pipes.append(asyncio.create_task(_pipe(reader, up_writer)))
        pipes.append(asyncio.create_task(_pipe(up_reader, writer)))
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        up_writer.transport.abort()
        writer.transport.abort()

    try:
        server = await asyncio.start_server(serve, loopback, 0)
    except OSError:
        up_writer.transport.abort()
        raise
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        for writer in writers:
            writer.transport.abort()  # no TLS close_notify dance: the call is over
        # the handler ends once its pipes are cancelled: nothing outlives the block
        await asyncio.gather(*pipes, *handlers, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies `reader` to `writer` until end of stream, an error or `MAX_RELAY_BYTES`."""
    left = MAX_RELAY_BYTES
    with contextlib.suppress(OSError, ConnectionError):
        while left > 0:
            data = await reader.read(min(_CHUNK, left))
            if not data:
                return
            left -= len(data)
            writer.write(data)
            await writer.drain()
