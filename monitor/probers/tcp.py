"""A plain TCP connect, optionally with a TLS handshake, to any host:port."""

from __future__ import annotations

import asyncio
import contextlib

from monitor.config import TcpChannel
from monitor.model import ProbeResult
from monitor.probers._base import ProbeContext, guarded

__all__ = ["probe_tcp"]


@guarded
async def probe_tcp(channel: TcpChannel, ctx: ProbeContext) -> ProbeResult:
    """Succeeds when the connection (and the TLS handshake, if asked) completes."""
    tls = ctx.ssl_context if channel.tls else None
    _, writer = await asyncio.open_connection(
        channel.host, channel.port, ssl=tls, server_hostname=channel.host if tls else None
    )
    peer = writer.get_extra_info("peername")
    writer.close()
    with contextlib.suppress(OSError):  # a reset on close says nothing about reachability
        await writer.wait_closed()
    return ProbeResult(True, details={"peer": f"{peer[0]}:{peer[1]}" if peer else None})
