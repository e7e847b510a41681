"""HTTP(S) probes of web, chat and social channels, and the capped page fetch that
source scans share.

Redirects are followed here, to count them, catch loops and refuse hops into our own
network; each hop is one GET on a fresh connection of the probe's own httpx client
(`hop`), which carries cookies from one hop to the next.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor import patterns
from monitor.charset import decode_page
from monitor.config import WebChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers import hop
from monitor.probers._base import ProbeContext, guarded, note
from monitor.probers._settings import merged_headers, request_proxy
from monitor.probers.resolving import resolve_host
from monitor.redact import mask_password

__all__ = ["Page", "fetch", "probe_http"]

_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(kw_only=True)
class Page(hop.Response):
    """What one GET returned after following redirects: the last hop's answer, with the URL
    it came from and the number of redirects that led there."""

    url: str  # the final URL
    redirects: int


async def fetch(
    url: str,
    ctx: ProbeContext,
    max_body_bytes: int,
    max_redirects: int,
    *,
    headers: Mapping[str, str] | None = None,
    proxy: str | None = None,
    follow_redirects: bool = True,
    body: str = "decode",
) -> Page:
    """GET `url` on fresh connections, following at most `max_redirects` redirects (none
    when `follow_redirects` is false: the first answer is the page). `headers` go over
    `defaults.http.headers`; `proxy` over `defaults.http.proxy`. `body`: see `hop.get`.
    `ProbeFailure` on loops, oversize bodies, bad encodings, hostile Locations."""
    url = _without_trailing_dot(url)
    follow_redirects = follow_redirects and max_redirects > 0
    origin = urlsplit(url).hostname
    merged = httpx.Headers({"User-Agent": hop.DEFAULT_USER_AGENT})
    merged.update(merged_headers(ctx, headers))  # case-insensitive: theirs replaces ours

    def mode(status: int, has_location: bool) -> str:
        # A redirect's body is never read: only the page it leads to counts.
        followed = follow_redirects and status in _REDIRECTS and has_location
        return "skip" if followed else body

    async with hop.open_client(ctx, merged, request_proxy(ctx, proxy)) as client:
        seen = {(url, _cookies(client))}
        for count in range(max_redirects + 1):
            note(redirects=count, url=mask_password(url)[:300])
            if count:
                await _refuse_inward(origin, url, ctx)
            answer = await hop.get(client, httpx.URL(url), max_body_bytes, mode)
            if answer.status not in _REDIRECTS or not answer.locations or not follow_redirects:
                return Page(**vars(answer), url=url, redirects=count)
            url = _redirect_target(url, answer.locations)
            # Back to a page already seen is a loop only if no cookie changed meanwhile: a
            # site that sets a session cookie and redirects to itself is not looping.
            visit = (url, _cookies(client))
            if visit in seen:
                raise ProbeFailure(
                    "redirect_loop", f"redirect loop back to {mask_password(url)[:200]}"
                )
            seen.add(visit)
    raise ProbeFailure("too_many_redirects", f"more than {max_redirects} redirects")


def _cookies(client: httpx.AsyncClient) -> frozenset[tuple[str, str | None, str, str]]:
    return frozenset((c.name, c.value, c.domain, c.path) for c in client.cookies.jar)


def _without_trailing_dot(url: str) -> str:
    """`portal.example.org.` is `portal.example.org`: one name for SNI, `Host` and the
    certificate check (RFC 6066 §3 forbids the dot in SNI; certificates never carry it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.endswith(".") or host.startswith("["):
        return url
    netloc = parts.netloc
    at = netloc.rfind("@") + 1
    hostport = netloc[at:]
    index = hostport.lower().rfind(host)
    fixed = hostport[:index] + host.rstrip(".") + hostport[index + len(host) :]
    return parts._replace(netloc=netloc[:at] + fixed).geturl()


async def _refuse_inward(origin: str | None, url: str, ctx: ProbeContext) -> None:
    """A redirect may lead into our own network only if the target itself lives there (or
    the registry allows it): a hostile site must not turn the monitor against it. The
    link-local range, where cloud metadata services answer (169.254.169.254), is refused
    whatever the origin, unless the origin itself is link-local."""
    target = urlsplit(url).hostname
    if await is_link_local_host(target, ctx) and not await is_link_local_host(origin, ctx):
        raise ProbeFailure(
            "redirect_private",
            f"redirect into a link-local (cloud metadata) address: {mask_password(url)[:200]}",
        )
    if ctx.defaults.allow_private_redirects or await is_internal_host(origin, ctx):
        return
    if await is_internal_host(target, ctx):
        raise ProbeFailure(
            "redirect_private",
            f"redirect into a private or local address: {mask_password(url)[:200]}",
        )


async def is_internal_host(host: str | None, ctx: ProbeContext | None = None) -> bool:
    """True when `host` is, or resolves to, a loopback, private, link-local (cloud metadata),
    reserved or unspecified address. A name that does not resolve is not internal: the
    request itself will fail with the DNS reason. With `defaults.resolver` in `ctx`, the
    name is resolved there, as the request will resolve it."""
    return any(_internal(a) for a in await _addresses(host, ctx))


async def is_link_local_host(host: str | None, ctx: ProbeContext | None = None) -> bool:
    """True when `host` is, or resolves to, a link-local address: 169.254.0.0/16 (RFC 3927,
    where cloud metadata services answer) or fe80::/10 (RFC 4291 §2.5.6)."""
    return any(_plain(a).is_link_local for a in await _addresses(host, ctx))


async def _addresses(
    host: str | None, ctx: ProbeContext | None
) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses `host` is or resolves to (as the request will resolve it); none for a
    name that does not resolve."""
    if not host:
        return set()
    try:
        return {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        pass
    if ctx is not None and ctx.defaults.resolver is not None:
        try:
            found = await resolve_host(ctx.resolver, host, ctx.defaults.timeout)
        except ProbeFailure:
            return set()
        return {ipaddress.ip_address(a) for a in found}
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return set()
    return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def _plain(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address (::ffff:169.254.169.254) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    address = _plain(address)
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_multicast
    )


def _redirect_target(url: str, locations: tuple[str, ...]) -> str:
    """The absolute URL a Location leads to; a hostile one ends the probe with a reason.
    Several different Locations are ambiguous and refused, as browsers refuse them."""
    location = locations[0]
    if len(locations) > 1:
        raise ProbeFailure(
            "redirect_invalid", f"{len(locations)} different Location headers: {location[:200]}"
        )
    try:
        target = urljoin(url, location)
        parts = urlsplit(target)
        if parts.scheme.lower() not in ("http", "https"):
            raise ProbeFailure("redirect_scheme", f"redirect to a non-HTTP URL: {target[:200]}")
        _ = parts.port  # out of range raises here, not at connect time
        # A browser follows a raw UTF-8 Location percent-encoded; httpx.URL does the same.
        absolute = str(httpx.URL(target))
    except (ValueError, httpx.InvalidURL):
        raise ProbeFailure(
            "redirect_invalid", f"redirect to an invalid URL: {location[:200]}"
        ) from None
    return _without_trailing_dot(absolute)


@guarded
async def probe_http(channel: WebChannel, ctx: ProbeContext) -> ProbeResult:
    """GET the channel's URL and check status, body, Location, latency and certificate."""
    expect = channel.expect
    started = time.perf_counter()
    page = await fetch(
        channel.url,
        ctx,
        expect.max_body_bytes,
        expect.max_redirects,
        headers=channel.headers,
        proxy=channel.proxy,
        follow_redirects=channel.follow_redirects,
        body=_body_mode(expect),
    )
    elapsed = time.perf_counter() - started
    details = _page_details(page)
    failure = _expectation_failure(channel, page, elapsed)
    if failure:
        return ProbeResult(False, failure[0], failure[1], details=details)
    return ProbeResult(True, details=details)


def _body_mode(expect: Any) -> str:
    """What a channel needs of the body (see `hop.get`): decoded text for a body regex; for
    a status-only check, the body read raw up to an explicit `max_body_bytes` (past it:
    too_large, as blackbox_exporter's `body_size_limit`), or else only up to the default
    cap and then left unread: a large healthy page is not a failure nobody asked for."""
    if expect.body_regex or expect.body_not_regex:
        return "decode"
    return "drain" if "max_body_bytes" in expect.model_fields_set else "peek"


def _page_details(page: Page) -> dict[str, Any]:
    details: dict[str, Any] = {
        "status_code": page.status,
        "final_url": mask_password(page.url),
        "redirects": page.redirects,
        "body_bytes": page.body_bytes,
        "phases": page.phases,
    }
    if page.locations:
        details["location"] = page.locations[0][:500]
    if page.proxied:
        details["proxied"] = True
    if page.body_truncated:
        details["body_truncated"] = True
    if page.chain is not None:
        if page.chain.not_after is not None:
            details["cert_not_after"] = page.chain.not_after
            details["cert_days_left"] = round((page.chain.not_after - time.time()) / 86400, 2)
        details["tls_version"] = page.chain.tls_version
        details["tls_chain_length"] = page.chain.chain_length
        details["tls_leaf"] = page.chain.leaf
    return details


def matches(pattern: str, text: str) -> bool:
    """Whether `pattern` (a registry regular expression) occurs in `text`: the one place
    body and Location patterns are run."""
    return patterns.search(pattern, text)


def _expectation_failure(channel: WebChannel, page: Page, elapsed: float) -> tuple[str, str] | None:
    expect = channel.expect
    failure = status_failure(expect, page.status)
    if failure is None and expect.location_regex is not None:
        location = page.locations[0] if page.locations else ""
        if not matches(expect.location_regex, location):
            failure = "location_mismatch", f"Location {location[:200]!r} does not match"
    if failure is None and (expect.body_regex or expect.body_not_regex):
        text = decode_page(page.body, page.headers.get("content-type"))
        failure = text_failure(expect, text, "body")
    return failure or latency_or_certificate_failure(
        expect, elapsed, page.cert_not_after, "answered"
    )


def status_failure(expect: Any, status: int) -> tuple[str, str] | None:
    """`http_status` when `status` is not one of `expect.status`; shared by the HTTP and the
    rendered-page probes."""
    if status in expect.status:
        return None
    return "http_status", f"status {status}, expected {', '.join(map(str, expect.status))}"


def text_failure(expect: Any, text: str, what: str) -> tuple[str, str] | None:
    """`body_mismatch` when `expect.body_regex` finds nothing in `text`, `body_forbidden`
    when `expect.body_not_regex` finds something (RE2, linear time); `what` names the text
    in the message ("body", "rendered text")."""
    if expect.body_regex and not matches(expect.body_regex, text):
        return "body_mismatch", f"{what} does not match {expect.body_regex!r}"
    if expect.body_not_regex and matches(expect.body_not_regex, text):
        return "body_forbidden", f"{what} matches {expect.body_not_regex!r}"
    return None


def latency_or_certificate_failure(
    expect: Any, elapsed: float, cert_not_after: float | None, verb: str
) -> tuple[str, str] | None:
    """`slow` past `expect.max_latency` (seconds), `tls_expiring` under `cert_min_days`;
    shared by the HTTP and the rendered-page probes (`verb`: "answered", "rendered")."""
    if expect.max_latency is not None and elapsed > expect.max_latency:
        return "slow", f"{verb} in {elapsed:.3f}s, more than {expect.max_latency:g}s"
    if expect.cert_min_days is not None and cert_not_after is not None:
        days = (cert_not_after - time.time()) / 86400
        if days < expect.cert_min_days:
            return "tls_expiring", f"certificate expires in {days:.1f} days"
    return None
