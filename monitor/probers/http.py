"""HTTP(S) probes of web, chat and social channels, and the capped page fetch that
source scans share.

Redirects are followed here, not by httpx, to count them, catch loops and measure
the final hop; bodies are read raw and decompressed here to bound what a hostile
server can make us hold in memory.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor.charset import decode_page
from monitor.config import WebChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, guarded

__all__ = ["Page", "fetch", "probe_http"]

_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass
class Page:
    """What one GET returned after following redirects."""

    url: str  # the final URL
    status: int
    headers: httpx.Headers
    body: bytes  # decoded from any content-encoding, at most the cap
    redirects: int
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase of the last hop
    cert_not_after: float | None = None  # epoch seconds, HTTPS only
    tls_version: str | None = None


async def fetch(url: str, ctx: ProbeContext, max_body_bytes: int, max_redirects: int) -> Page:
    """GET `url` on fresh connections; `ProbeFailure` on loops, oversize bodies, bad encodings."""
    seen = {url}
    origin = urlsplit(url).hostname
    for hop in range(max_redirects + 1):
        if hop:
            await _refuse_inward(origin, url, ctx)
        page = await _get_once(url, ctx, max_body_bytes)
        page.redirects = hop
        location = page.headers.get("location")
        if page.status not in _REDIRECTS or not location:
            return page
        url = urljoin(url, location.strip())  # its scheme and syntax were checked on receipt
        if url in seen:
            raise ProbeFailure("redirect_loop", f"redirect loop back to {url[:200]}")
        seen.add(url)
    raise ProbeFailure("too_many_redirects", f"more than {max_redirects} redirects")


async def _refuse_inward(origin: str | None, url: str, ctx: ProbeContext) -> None:
    """A redirect may lead into our own network only if the target itself lives there (or
    the registry allows it): a hostile site must not turn the monitor against it."""
    if ctx.defaults.allow_private_redirects or await is_internal_host(origin):
        return
    if await is_internal_host(urlsplit(url).hostname):
        raise ProbeFailure(
            "redirect_private", f"redirect into a private or local address: {url[:200]}"
        )


async def is_internal_host(host: str | None) -> bool:
    """True when `host` is, or resolves to, a loopback, private, link-local (cloud metadata),
    reserved or unspecified address. A name that does not resolve is not internal: the
    request itself will fail with the DNS reason."""
    if not host:
        return False
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return False
        addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return any(_internal(a) for a in addresses)


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_multicast
    )


class _PhaseTrace:
    """httpcore trace hook: the moment each phase of the request completed."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(".complete"):
            self.marks[event.split(".")[-2]] = time.perf_counter()

    def phases(self, done: float) -> dict[str, float]:
        order = [
            ("connect", "connect_tcp"),
            ("tls", "start_tls"),
            ("request", "send_request_body"),
            ("server", "receive_response_headers"),
        ]
        out, last = {}, self.start
        for phase, mark in order:
            if mark in self.marks:
                out[phase] = round(self.marks[mark] - last, 6)
                last = self.marks[mark]
        out["transfer"] = round(done - last, 6)
        return out


async def _get_once(url: str, ctx: ProbeContext, max_body_bytes: int) -> Page:
    trace = _PhaseTrace()
    request = ctx.http.build_request("GET", url, extensions={"trace": trace})
    response = await ctx.http.send(request, stream=True)

    try:
        not_after, tls_version = _peer_certificate(response)
        body = b""
        if response.status_code not in _REDIRECTS:
            body = await _read_capped(response, max_body_bytes)
        return Page(
            url,
            response.status_code,
            response.headers,
            body,
            0,
            trace.phases(time.perf_counter()),
            not_after,
            tls_version,
        )
    finally:
        await response.aclose()


def _peer_certificate(response: httpx.Response) -> tuple[float | None, str | None]:
    stream = response.extensions.get("network_stream")
    tls: ssl.SSLObject | None = stream.get_extra_info("ssl_object") if stream else None
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


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    decoder = _Decoder(response.headers.get("content-encoding", ""))
    body = bytearray()
    raw_read = 0
    async for chunk in response.aiter_raw():
        raw_read += len(chunk)
        out, more = decoder.feed(chunk, cap + 1 - len(body))
        body += out
        if len(body) > cap or more or raw_read > cap:
            raise ProbeFailure(
                "too_large", f"body larger than {cap} bytes", body_bytes_read=len(body)
            )
    return bytes(body)


@guarded
async def probe_http(channel: WebChannel, ctx: ProbeContext) -> ProbeResult:
    """GET the channel's URL and check status, body, latency and certificate."""
    expect = channel.expect
    started = time.perf_counter()
    page = await fetch(channel.url, ctx, expect.max_body_bytes, expect.max_redirects)
    elapsed = time.perf_counter() - started
    details = _page_details(page)
    failure = _expectation_failure(channel, page, elapsed)
    if failure:
        return ProbeResult(False, failure[0], failure[1], details=details)
    return ProbeResult(True, details=details)


def _page_details(page: Page) -> dict[str, Any]:
    details: dict[str, Any] = {
        "status_code": page.status,
        "final_url": page.url,
        "redirects": page.redirects,
        "body_bytes": len(page.body),
        "phases": page.phases,
    }
    if page.cert_not_after is not None:
        details["cert_not_after"] = page.cert_not_after
        details["cert_days_left"] = round((page.cert_not_after - time.time()) / 86400, 2)
        details["tls_version"] = page.tls_version
    return details


def _expectation_failure(channel: WebChannel, page: Page, elapsed: float) -> tuple[str, str] | None:
    expect = channel.expect
    if page.status not in expect.status:
        allowed = ", ".join(map(str, expect.status))
        return "http_status", f"status {page.status}, expected {allowed}"
    text = decode_page(page.body, page.headers.get("content-type"))
    if expect.body_regex and not re.search(expect.body_regex, text):
        return "body_mismatch", f"body does not match {expect.body_regex!r}"
    if expect.body_not_regex and re.search(expect.body_not_regex, text):
        return "body_forbidden", f"body matches {expect.body_not_regex!r}"
    if expect.max_latency is not None and elapsed > expect.max_latency:
        return "slow", f"answered in {elapsed:.3f}s, more than {expect.max_latency:g}s"
    if expect.cert_min_days is not None and page.cert_not_after is not None:
        days = (page.cert_not_after - time.time()) / 86400
        if days < expect.cert_min_days:
            return "tls_expiring", f"certificate expires in {days:.1f} days"
    return None
