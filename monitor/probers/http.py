"""HTTP(S) probes of web, chat and social channels, and the capped page fetch that
source scans share.

Redirects are followed here, to count them, catch loops and refuse hops into our own
network; each hop is one GET on a fresh connection (`wire`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor import patterns
from monitor.charset import decode_page
from monitor.config import WebChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers import wire
from monitor.probers._base import ProbeContext, guarded

__all__ = ["Page", "fetch", "probe_http"]

_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(kw_only=True)
class Page(wire.Response):
    """What one GET returned after following redirects: the last hop's answer, with the URL
    it came from and the number of redirects that led there."""

    url: str  # the final URL
    redirects: int


async def fetch(url: str, ctx: ProbeContext, max_body_bytes: int, max_redirects: int) -> Page:
    """GET `url` on fresh connections; `ProbeFailure` on loops, oversize bodies, bad encodings."""
    seen = {url}
    origin = urlsplit(url).hostname
    for hop in range(max_redirects + 1):
        if hop:
            await _refuse_inward(origin, url, ctx)
        answer = await wire.get(httpx.URL(url), ctx.ssl_context, max_body_bytes, _not_redirect)
        location = answer.headers.get("location")
        if answer.status not in _REDIRECTS or not location:
            return Page(**vars(answer), url=url, redirects=hop)
        url = _redirect_target(url, location)
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


def _not_redirect(status: int) -> bool:
    return status not in _REDIRECTS


def _redirect_target(url: str, location: str) -> str:
    """The absolute URL a Location leads to; a hostile one ends the probe with a reason."""
    try:
        target = urljoin(url, location.strip())
        parts = urlsplit(target)
        _ = parts.port  # out of range raises here, not at connect time
        httpx.URL(target)
    except (ValueError, httpx.InvalidURL):
        raise ProbeFailure(
            "redirect_invalid", f"redirect to an invalid URL: {location.strip()[:200]}"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ProbeFailure("redirect_scheme", f"redirect to a non-HTTP URL: {target[:200]}")
    return target


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
    if expect.body_regex and not patterns.search(expect.body_regex, text):
        return "body_mismatch", f"body does not match {expect.body_regex!r}"
    if expect.body_not_regex and patterns.search(expect.body_not_regex, text):
        return "body_forbidden", f"body matches {expect.body_not_regex!r}"
    if expect.max_latency is not None and elapsed > expect.max_latency:
        return "slow", f"answered in {elapsed:.3f}s, more than {expect.max_latency:g}s"
    if expect.cert_min_days is not None and page.cert_not_after is not None:
        days = (page.cert_not_after - time.time()) / 86400
        if days < expect.cert_min_days:
            return "tls_expiring", f"certificate expires in {days:.1f} days"
    return None
