"""One HTTP/1.1 GET on a connection of its own: asyncio streams carry the bytes, h11 speaks
the protocol. httpx's client cost about three times the CPU per probe for a connection
pool, cookies and hooks that a probe turns off anyway (bench/, issue 8).

Bodies are read raw and decoded here, so that a hostile server can never make us hold more
than the cap; header blocks are bounded by h11.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import h11
import httpx

from monitor.model import ProbeFailure

__all__ = ["Response", "get"]

READ_SIZE = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024  # status line and headers together; more is a hostile server
USER_AGENT = "contact-monitor/0.1 (+https://github.com/contact-monitor)"


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    body: bytes  # decoded from any content-encoding, at most the cap
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase
    cert_not_after: float | None = None  # epoch seconds, HTTPS only
    tls_version: str | None = None


class _Phases:
    """Seconds spent in each phase, measured from the previous mark."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self.last, 6)
        self.last = now


async def get(
    url: httpx.URL, ssl_context: ssl.SSLContext, cap: int, want_body: Callable[[int], bool]
) -> Response:
    """GET `url`; the body is read (at most `cap` bytes) only when `want_body(status)`."""
    phases = _Phases()
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    reader, writer = await asyncio.open_connection(
        host, port, limit=READ_SIZE, happy_eyeballs_delay=_race_delay(host)
    )
    try:
        phases.mark("connect")
        if url.scheme == "https":
            await writer.start_tls(ssl_context, server_hostname=host)
            phases.mark("tls")
        connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        writer.write(connection.send(_request(url)) + connection.send(h11.EndOfMessage()))
        await writer.drain()
        phases.mark("request")
        head = await _response_head(connection, reader)
        phases.mark("server")
        headers = httpx.Headers(head.headers)
        body = b""
        if want_body(head.status_code):
            encoding = headers.get("content-encoding", "")
            body = await _read_body(connection, reader, _Decoder(encoding), cap)
        phases.mark("transfer")
        not_after, tls_version = _peer_certificate(writer)
        return Response(head.status_code, headers, body, phases.seconds, not_after, tls_version)
    finally:
        writer.close()


def _race_delay(host: str) -> float | None:
    """Happy Eyeballs (RFC 8305) for a name, whose IPv6 and IPv4 addresses race 250 ms apart
    so that a dead family does not eat the timeout; an address has nothing to race."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return 0.25
    return None


def _request(url: httpx.URL) -> h11.Request:
    return h11.Request(
        method="GET",
        target=url.raw_path,
        headers=[
            ("Host", url.netloc),
            ("User-Agent", USER_AGENT),
            ("Accept", "*/*"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Connection", "close"),
        ],
    )


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            return event
        connection.receive_data(await reader.read(READ_SIZE))


async def _response_head(connection: h11.Connection, reader: asyncio.StreamReader) -> h11.Response:
    while True:
        event = await _next_event(connection, reader)
        if isinstance(event, h11.Response):
            return event
        if not isinstance(event, h11.InformationalResponse):  # 1xx come before the answer
            raise ProbeFailure("http_protocol", "connection closed before a response")


async def _read_body(
    connection: h11.Connection, reader: asyncio.StreamReader, decoder: _Decoder, cap: int
) -> bytes:
    body = bytearray()
    raw_read = 0
    while True:
        event = await _next_event(connection, reader)
        if not isinstance(event, h11.Data):
            return bytes(body)  # EndOfMessage, or the peer closing a close-delimited body
        raw_read += len(event.data)
        out, more = decoder.feed(event.data, cap + 1 - len(body))
        body += out
        if len(body) > cap or more or raw_read > cap:
            raise ProbeFailure(
                "too_large", f"body larger than {cap} bytes", body_bytes_read=len(body)
            )


def _peer_certificate(writer: asyncio.StreamWriter) -> tuple[float | None, str | None]:
    tls: ssl.SSLObject | None = writer.get_extra_info("ssl_object")
    if tls is None:
        return None, None
    cert = tls.getpeercert() or {}
    not_after = cert.get("notAfter")
    return (ssl.cert_time_to_seconds(not_after) if not_after else None), tls.version()


class _Decoder:
    """Content-encoding decoder that never produces more than it is asked for."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
        else:
            raise ProbeFailure("bad_encoding", f"unsupported content-encoding {encoding!r}")

    def feed(self, chunk: bytes, limit: int) -> tuple[bytes, bool]:
        """Decoded bytes (at most `limit`) and whether more output was waiting."""
        if self._zlib is None:
            return chunk[:limit], len(chunk) > limit
        try:
            out = self._zlib.decompress(chunk, limit)
        except zlib.error as exc:
            raise ProbeFailure("bad_encoding", f"corrupt compressed body: {exc}") from None
        return out, bool(self._zlib.unconsumed_tail)
