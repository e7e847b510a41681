"""One GET of a probe, through the probe's own `httpx.AsyncClient`.

A probe opens one client (`open_client`) and makes one `get` per hop of its redirect
chain: cookies set by one hop go with the next ones and die with the client, and no
connection is kept alive, so every hop resolves, connects and shakes hands itself (DESIGN:
a pooled connection would hide DNS, connect and certificate failures). Phase timings come
from httpx's `trace` extension, the certificate chain from the response's network stream.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpcore
import httpx
from httpx._utils import get_environment_proxies  # the rules trust_env applies

from monitor.model import ProbeFailure
from monitor.probers._base import ProbeContext, failure_from_exception, note
from monitor.probers.codings import BodyDecoder
from monitor.probers.received import RecordingBackend, recording
from monitor.probers.resolving import ResolvingBackend
from monitor.probers.tlsinfo import PeerChain, peer_chain
from monitor.wiretext import wire_text

__all__ = ["DEFAULT_USER_AGENT", "MAX_HEAD_BYTES", "Response", "get", "open_client"]

# http.cookiejar drops a Set-Cookie it cannot parse (an impossible Expires date, say) and
# warns with a whole traceback, which would land in the daemon's JSON log as raw lines at
# every probe of that site; the cookie is dropped as a browser drops it, which is all the
# probe needs.
warnings.filterwarnings("ignore", message=r"http\.cookiejar bug", category=UserWarning)

# Honest (it names us) yet shaped like a browser's, which common bot filters let through.
DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; contact-monitor)"
# httpcore stops reading a head past 100 KiB only when it arrives in pieces; the same limit
# applied to every head makes the verdict independent of how TCP segments the answer.
MAX_HEAD_BYTES = 100 * 1024
_NO_REUSE = httpx.Limits(max_connections=None, max_keepalive_connections=0)


@dataclass
class Response:
    """One hop's answer."""

    status: int
    headers: httpx.Headers
    body: bytes  # decoded (at most the cap) when asked for, else empty
    phases: dict[str, float] = field(default_factory=dict)  # seconds: connect, tls, ...
    chain: PeerChain | None = None  # HTTPS only
    locations: tuple[str, ...] = ()  # distinct Location values, raw UTF-8 read as browsers do
    proxied: bool = False
    body_bytes: int = 0  # bytes of body read: decoded when decoded, else as sent
    body_truncated: bool = False  # "peek": the cap was reached and the rest left unread

    @property
    def cert_not_after(self) -> float | None:
        return self.chain.not_after if self.chain else None


def open_client(ctx: ProbeContext, headers: httpx.Headers, proxy: str | None) -> Any:
    """A client for one probe. Without `proxy`, HTTP_PROXY/HTTPS_PROXY/NO_PROXY apply.
    Timeouts are the probe's as a whole (`guarded`), not per read. With
    `defaults.resolver`, host names (the proxy's too) are resolved by `ctx.resolver`."""
    mounts = None
    if proxy is None:
        mounts = {
            pattern: _transport(ctx, url) if url else None
            for pattern, url in _environment_proxies(_proxy_environment()).items()
        }
    return httpx.AsyncClient(
        headers=headers,
        transport=_transport(ctx, proxy),
        mounts=mounts,
        trust_env=False,
        timeout=None,
        follow_redirects=False,
        event_hooks={"response": [_take_locations]},
    )


def _transport(ctx: ProbeContext, proxy: str | None) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=ctx.ssl_context, proxy=proxy, limits=_NO_REUSE)
    backend: httpcore.AsyncNetworkBackend = httpcore.AnyIOBackend()
    if ctx.defaults.resolver is not None:
        backend = ResolvingBackend(ctx.resolver, ctx.defaults.timeout)
    # httpx takes no network backend; its pool (plain or proxy) reads this one at every
    # connection it opens.
    transport._pool._network_backend = RecordingBackend(backend)  # type: ignore[union-attr]
    return transport


_PROXY_VARIABLES = (
    *(
        name
        for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        for name in (base, base.upper())
    ),
    "REQUEST_METHOD",  # urllib ignores HTTP_PROXY under CGI
)


def _proxy_environment() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in _PROXY_VARIABLES)


@functools.lru_cache(maxsize=4)
def _environment_proxies(_environment: tuple[str | None, ...]) -> dict[str, str | None]:
    """httpx's own reading of the proxy variables (URL pattern -> proxy, None for NO_PROXY),
    done once per set of values: urllib scans the whole environment at every call, a tenth
    of a probe's CPU when every probe opens its client."""
    return get_environment_proxies()


async def _take_locations(answer: httpx.Response) -> None:
    """Moves Location out of the headers before httpx builds its own next request from it,
    which would turn a hostile Location into a generic protocol error: the redirect is
    judged (and refused with its own reason) by the prober."""
    answer.extensions["locations"] = _locations(answer)
    answer.extensions["head_bytes"] = _head_bytes(answer)
    if "location" in answer.headers:
        del answer.headers["location"]


class _Trace:
    """httpcore's trace events, timed; the phase reached is noted as the probe goes."""

    _PHASES: ClassVar[dict[str, str]] = {
        "connect_tcp": "connect",
        "start_tls": "tls",
        "send_request_headers": "request",
        "receive_response_headers": "server",
        "receive_response_body": "transfer",
    }

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.connected_to: tuple[str, int] | None = None

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        event = name.partition(".")[2]  # "connection.connect_tcp.started" -> "connect_tcp..."
        self.marks[event] = time.perf_counter()
        step, _, edge = event.rpartition(".")
        if edge == "started" and step in self._PHASES:
            note(phase=self._PHASES[step])
        if event == "connect_tcp.started" and self.connected_to is None:
            self.connected_to = (str(info.get("host")), int(info.get("port") or 0))

    def phases(self, body_done: float) -> dict[str, float]:
        m = self.marks
        spans = {
            "connect": ("connect_tcp.started", "connect_tcp.complete"),
            "tls": ("start_tls.started", "start_tls.complete"),
            "request": ("send_request_headers.started", "send_request_body.complete"),
            "server": ("send_request_body.complete", "receive_response_headers.complete"),
        }
        out = {k: round(m[b] - m[a], 6) for k, (a, b) in spans.items() if a in m and b in m}
        if "receive_response_headers.complete" in m:
            out["transfer"] = round(body_done - m["receive_response_headers.complete"], 6)
        return out

    def via_proxy(self, url: httpx.URL) -> bool:
        port = url.port or (443 if url.scheme == "https" else 80)
        host = url.raw_host.decode("ascii")  # A-labels, as httpcore connects
        return self.connected_to is not None and self.connected_to != (host, port)


async def get(
    client: httpx.AsyncClient, url: httpx.URL, cap: int, body: Callable[[int, bool], str]
) -> Response:
    """GET `url`. `body(status, has_location)` says what to do with the body: "decode"
    reads and decodes it (at most `cap` bytes), "drain" reads it raw (a status-only check
    never fails on its coding), "peek" reads it raw up to `cap` and leaves the rest unread
    (no too_large), "head" decodes its first `cap` bytes and leaves the rest unread (no
    too_large; `body_truncated` says it stopped), "skip" leaves it unread.

    Raises `ProbeFailure` for oversize, badly coded or oversized-head answers and for a
    proxy's own failures; other transport errors propagate for the guard to classify.
    """
    trace = _Trace()
    received = recording()
    try:
        async with client.stream("GET", url, extensions={"trace": trace}) as answer:
            _check_head(answer)
            proxied = trace.via_proxy(url)
            if answer.status_code == 407 and proxied:
                raise ProbeFailure("proxy_auth", "the proxy wants credentials (407)")
            stream = answer.extensions.get("network_stream")
            tls: ssl.SSLObject | None = stream.get_extra_info("ssl_object") if stream else None
            chain = peer_chain(tls)
            locations = answer.extensions.get("locations", ())
            mode = body(answer.status_code, bool(locations))
            data, size, truncated = (
                await _read(answer, cap, mode) if mode != "skip" else (b"", 0, False)
            )
            phases = trace.phases(time.perf_counter())
            note(phase="done", phases=phases)
            return Response(
                answer.status_code,
                answer.headers,
                data,
                phases,
                chain,
                locations,
                proxied,
                size,
                truncated,
            )
    except BaseException as exc:  # a timeout (cancellation) too: keep how far it got
        note(phases=trace.phases(time.perf_counter()))
        if isinstance(exc, httpx.RemoteProtocolError) and _NO_RESPONSE in str(exc):
            raise ProbeFailure("http_protocol", _no_status_line(bytes(received))) from None
        if trace.via_proxy(url) and isinstance(exc, httpx.ConnectError):
            reason, message = failure_from_exception(exc)
            if reason in ("connect_refused", "connect_failed", "connect_reset"):
                raise ProbeFailure("proxy_refused", f"the proxy refused: {message}") from None
        raise


_NO_RESPONSE = "without sending a response"  # httpcore's words for any answer without a head


def _no_status_line(received: bytes) -> str:
    """What the server did instead of answering with a status line (RFC 9112 §4)."""
    if not received:
        return "the server closed the connection without answering"
    if received.startswith(b"HTTP/"):
        return f"the server closed the connection inside its response head: {wire_text(received)}"
    return f"the server answered without an HTTP status line: {wire_text(received)}"


def _head_bytes(answer: httpx.Response) -> int:
    """The size of the status line and header block as sent (within a few bytes)."""
    return len(answer.reason_phrase) + 15 + sum(len(k) + len(v) + 4 for k, v in answer.headers.raw)


def _check_head(answer: httpx.Response) -> None:
    size = answer.extensions.get("head_bytes") or _head_bytes(answer)
    if size > MAX_HEAD_BYTES:
        raise ProbeFailure(
            "http_protocol", f"response head larger than {MAX_HEAD_BYTES // 1024} KiB"
        )


async def _read(answer: httpx.Response, cap: int, mode: str) -> tuple[bytes, int, bool]:
    """The body (decoded, or empty when drained), its size, both bounded by `cap`, and
    whether a "peek" or "head" stopped at the cap."""
    coding = answer.headers.get("content-encoding", "") if mode in ("decode", "head") else ""
    decoder = BodyDecoder(coding, cap, truncate=mode == "head")
    out = bytearray()
    raw = 0
    async for chunk in answer.aiter_raw():
        raw += len(chunk)
        if raw > cap and mode == "peek":
            return bytes(out), decoder.decoded, True  # the status is what counts
        if raw > cap and mode != "head":
            raise ProbeFailure(
                "too_large", f"body larger than {cap} bytes", body_bytes_read=min(raw, cap + 1)
            )
        over = raw > cap  # "head": what came past the cap is never decoded
        decoded = decoder.feed(chunk[: len(chunk) - (raw - cap)] if over else chunk)
        if mode in ("decode", "head"):
            out += decoded
        if over or decoder.truncated:
            return bytes(out), decoder.decoded, True  # the page's first `cap` bytes
    return bytes(out), decoder.decoded, False


def _locations(answer: httpx.Response) -> tuple[str, ...]:
    """Every distinct Location value. Bytes that are not ASCII are read as UTF-8, as
    browsers read them, falling back to Latin-1; the same value twice is one location."""
    found: list[str] = []
    for name, value in answer.headers.raw:
        if name.lower() == b"location":
            try:
                text = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                text = value.decode("latin-1").strip()
            if text and text not in found:
                found.append(text)
    return tuple(found)
