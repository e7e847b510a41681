"""WebSocket probes of `ws://` and `wss://` channel URLs (a support chat's backend).

The handshake (RFC 6455 §4) must answer 101 and, when `expect.subprotocol` is set, choose
that subprotocol; `wss://` is checked as HTTPS is (the shared SSL context, certificate
expiry, `cert_min_days`). Then, optionally, `expect.send` is sent and a message matching
`expect.receive_regex` must arrive within the timeout. The `websockets` library does the
framing. Reasons: `ws_handshake` (refused upgrade: the status is kept; a redirect is not
followed, as browsers do not follow it), `ws_no_reply`,
`ws_mismatch` (messages came, none matched), `ws_closed` (the server closed or dropped the
connection; the close code is kept, 1006 for a drop without a close frame).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    PayloadTooBig,
)

from monitor import patterns
from monitor.config import WebChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, guarded
from monitor.probers._settings import proxy_for, request_headers
from monitor.redact import mask_password

__all__ = ["probe_websocket"]

MAX_MESSAGES = 32  # messages read while waiting for the expected one
CLOSE_TIMEOUT_SECONDS = 1.0
ABNORMAL_CLOSURE = 1006  # RFC 6455 §7.1.5: closed without a close frame


@guarded
async def probe_websocket(channel: WebChannel, ctx: ProbeContext) -> ProbeResult:
    """Open the WebSocket, optionally send and wait for the expected reply, then close."""
    expect = channel.expect
    deadline = time.monotonic() + ctx.timeout_for(channel)
    started = time.perf_counter()
    details: dict[str, Any] = {}
    try:
        async with _connect(channel, ctx) as ws:
            elapsed = time.perf_counter() - started
            details.update(_handshake_details(ws, elapsed))
            _check_handshake(channel, ws, elapsed, details)
            if expect.send is not None:
                await ws.send(expect.send)
            if expect.receive_regex is not None:
                details["reply"] = await _expected_reply(ws, expect.receive_regex, deadline)
    except InvalidStatus as exc:
        raise _refused(exc, details) from None
    except InvalidHandshake as exc:
        raise ProbeFailure("ws_handshake", f"invalid handshake: {exc}"[:300], **details) from None
    except ConnectionClosed as exc:
        raise _closed(exc, details) from None
    return ProbeResult(True, details=details)


def _refused(exc: InvalidStatus, details: dict[str, Any]) -> ProbeFailure:
    """The handshake answered with something other than 101. A redirect is not followed:
    browsers fail a WebSocket whose handshake redirects (WHATWG Fetch, "obtain a WebSocket
    connection"), so the chat it serves is down for users, and a redirect must not lead the
    monitor into our own network."""
    status = exc.response.status_code
    location = exc.response.headers.get("Location")
    if 300 <= status < 400 and location:
        message = f"handshake redirected (HTTP {status}) to {mask_password(location)[:200]}; "
        message += "browsers do not follow a WebSocket redirect"
        return ProbeFailure("ws_handshake", message, status_code=status, **details)
    return ProbeFailure(
        "ws_handshake", f"upgrade refused with HTTP {status}", status_code=status, **details
    )


class _WithoutRedirects(connect):
    """websockets' `connect`, which follows up to 10 redirects by default, made to follow
    none, as browsers do."""

    def process_redirect(self, exc: Exception) -> Exception:
        return exc


def _connect(channel: WebChannel, ctx: ProbeContext) -> connect:
    headers = request_headers(channel, ctx)
    agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), None)
    options: dict[str, Any] = {
        "additional_headers": {k: v for k, v in headers.items() if k.lower() != "user-agent"},
        "open_timeout": None,  # the probe's own timeout bounds the handshake
        "close_timeout": CLOSE_TIMEOUT_SECONDS,
        "ping_interval": None,
        "max_size": channel.expect.max_body_bytes,
        "compression": None,
    }
    if agent:
        options["user_agent_header"] = agent
    if channel.expect.subprotocol:
        options["subprotocols"] = [channel.expect.subprotocol]
    if channel.url.lower().startswith("wss:"):
        options["ssl"] = ctx.ssl_context
    proxy = proxy_for(channel, ctx)
    if proxy:
        options["proxy"] = proxy
    return _WithoutRedirects(channel.url, **options)


def _handshake_details(ws: ClientConnection, elapsed: float) -> dict[str, Any]:
    details: dict[str, Any] = {
        "status_code": ws.response.status_code if ws.response else 101,
        "subprotocol": ws.subprotocol,
        "handshake_seconds": round(elapsed, 6),
    }
    tls: ssl.SSLObject | None = ws.transport.get_extra_info("ssl_object")
    if tls is not None:
        not_after = (tls.getpeercert() or {}).get("notAfter")
        if not_after:
            details["cert_not_after"] = ssl.cert_time_to_seconds(not_after)
            details["cert_days_left"] = round((details["cert_not_after"] - time.time()) / 86400, 2)
        details["tls_version"] = tls.version()
    return details


def _check_handshake(
    channel: WebChannel, ws: ClientConnection, elapsed: float, details: dict[str, Any]
) -> None:
    expect = channel.expect
    if expect.subprotocol and ws.subprotocol != expect.subprotocol:
        raise ProbeFailure(
            "ws_handshake",
            f"server chose subprotocol {ws.subprotocol!r}, expected {expect.subprotocol!r}",
            **details,
        )
    if expect.max_latency is not None and elapsed > expect.max_latency:
        raise ProbeFailure(
            "slow", f"handshake took {elapsed:.3f}s, more than {expect.max_latency:g}s", **details
        )
    days = details.get("cert_days_left")
    if expect.cert_min_days is not None and days is not None and days < expect.cert_min_days:
        raise ProbeFailure("tls_expiring", f"certificate expires in {days:.1f} days", **details)


async def _expected_reply(ws: ClientConnection, pattern: str, deadline: float) -> str:
    """The first message matching `pattern`; ProbeFailure when none comes in time."""
    seen: list[str] = []
    try:
        # End a little before the probe's own timeout, so the reason says what was missing.
        async with asyncio.timeout_at(_loop_time(deadline) - 0.05):
            while len(seen) < MAX_MESSAGES:
                message = await ws.recv()
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                if patterns.search(pattern, text):
                    return text[:200]
                seen.append(text)
    except TimeoutError:
        pass
    except PayloadTooBig:
        raise ProbeFailure("too_large", "a message larger than max_body_bytes") from None
    if not seen:
        raise ProbeFailure("ws_no_reply", "no message within the timeout")
    raise ProbeFailure(
        "ws_mismatch",
        f"{len(seen)} message(s), none matching {pattern!r}; first: {seen[0][:100]!r}",
        messages=len(seen),
    )


def _loop_time(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


def _closed(exc: ConnectionClosed, details: dict[str, Any]) -> ProbeFailure:
    code = exc.rcvd.code if exc.rcvd is not None else ABNORMAL_CLOSURE
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    if 1009 in (code, exc.sent.code if exc.sent else None):  # RFC 6455 §7.4.1: too big
        return ProbeFailure("too_large", "a message larger than max_body_bytes", close_code=code)
    text = f"server closed the connection with code {code}" + (f": {reason}" if reason else "")
    return ProbeFailure("ws_closed", text[:300], close_code=code, **details)
