"""What every prober shares: the context it runs in, the guard that keeps it from raising,
and the mapping of network exceptions to short `reason`s."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import functools
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dns.asyncresolver
import httpx

from monitor.browser import BrowserPool, screenshot_dir
from monitor.config import Defaults
from monitor.model import ProbeFailure, ProbeResult
from monitor.sip.budget import CallBudget
from monitor.wiretext import readable

__all__ = [
    "LOCAL_RESOURCES",
    "ProbeContext",
    "Prober",
    "failure_from_exception",
    "guarded",
    "note",
    "probe_context",
]

T = TypeVar("T")
# What the running probe has learned so far (phase reached, hops, MX host tried): a probe
# that ends in a timeout or an unexpected error still reports it.
_PROGRESS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("probe_progress")
Prober = Callable[[Any, "ProbeContext"], Awaitable[ProbeResult]]


@dataclass(frozen=True)
class ProbeContext:
    """Shared configuration for probes: one SSL context and one resolver. Connections are
    never shared: every probe makes its own journey. `browser` renders `render: browser`
    pages; it starts only when first used."""

    defaults: Defaults
    ssl_context: ssl.SSLContext
    resolver: dns.asyncresolver.Resolver
    browser: BrowserPool | None = None
    # SIP test calls: the daily budget (history database) and the cap on SIPp processes.
    call_budget: CallBudget = field(default_factory=CallBudget)
    sip_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    def timeout_for(self, target: Any) -> float:
        return getattr(target, "timeout", None) or self.defaults.timeout


def build_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def build_resolver(defaults: Defaults) -> dns.asyncresolver.Resolver:
    if defaults.resolver is None:
        try:
            return dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
            return resolver
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = list(defaults.resolver.nameservers)
    resolver.port = defaults.resolver.port
    return resolver


def guarded(
    prober: Callable[[T, ProbeContext], Awaitable[ProbeResult]],
) -> Callable[[T, ProbeContext], Awaitable[ProbeResult]]:
    """Make a prober total: time it, bound it by its timeout, turn any failure into a result."""

    @functools.wraps(prober)
    async def probe(target: T, ctx: ProbeContext) -> ProbeResult:
        started = time.perf_counter()
        timeout = ctx.timeout_for(target)
        learned: dict[str, Any] = {}
        token = _PROGRESS.set(learned)
        try:
            async with asyncio.timeout(timeout):
                result = await prober(target, ctx)
        except ProbeFailure as failure:
            details = {**learned, **failure.details}
            result = ProbeResult(False, failure.reason, failure.message, details=details)
        except TimeoutError:
            message = f"no answer within {timeout:g}s" + _where(learned)
            # a resolver that never answers is a DNS fault, whichever clock ran out first
            reason = "dns_timeout" if learned.get("phase") == "dns" else "timeout"
            result = ProbeResult(False, reason, message, details=dict(learned))
        except Exception as exc:  # noqa: BLE001 - a prober never raises; the reason says what
            reason, message = failure_from_exception(exc)
            result = ProbeResult(False, reason, message, details=dict(learned))
        finally:
            _PROGRESS.reset(token)
        return ProbeResult(
            result.success,
            result.reason,
            result.message,
            round(time.perf_counter() - started, 6),
            result.details,
            contacts=result.contacts,
        )

    return probe


def note(**facts: Any) -> None:
    """Record facts the running probe has learned; they stay in its result's `details`
    even when it ends in a timeout. Outside a probe, nothing happens."""
    learned = _PROGRESS.get(None)
    if learned is not None:
        learned.update(facts)


def forget(*keys: str) -> None:
    """Drop facts noted by the running probe that no longer hold (a phase left behind)."""
    learned = _PROGRESS.get(None)
    for key in keys if learned is not None else ():
        learned.pop(key, None)


def _where(learned: dict[str, Any]) -> str:
    stage = learned.get("phase") or learned.get("smtp_stage")
    return f" (stopped at {stage})" if stage else ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# OpenSSL X509_V_ERR codes: 10 expired, 9 not yet valid, 62 host and 64 IP mismatch.
_CERT_REASONS = {
    10: "tls_expired",
    9: "tls_not_yet_valid",
    62: "tls_hostname_mismatch",
    64: "tls_hostname_mismatch",
}


def failure_from_exception(exc: BaseException) -> tuple[str, str]:
    """A short reason and a sentence for a network failure anywhere in the exception chain."""
    for cause in _chain(exc):
        found = _classify_one(cause)
        if found:
            return found
    if any(isinstance(cause, OSError) for cause in _chain(exc)):
        return "connect_failed", f"connection failed: {exc or type(exc).__name__}"[:300]
    return "error", f"{type(exc).__name__}: {exc}"[:300]


# The monitor's own shortage, not the target's fault: too many open files (the process's or
# the system's), no memory, no socket buffers. See `LOCAL_RESOURCES`.
_LOCAL_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
LOCAL_RESOURCES = "local_resources"


def _classify_one(exc: BaseException) -> tuple[str, str] | None:
    if isinstance(exc, MemoryError):
        return LOCAL_RESOURCES, "the monitor itself ran out of memory"
    if isinstance(exc, OSError) and exc.errno in _LOCAL_ERRNOS:
        return LOCAL_RESOURCES, f"the monitor itself is short of resources: {exc.strerror}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = _CERT_REASONS.get(exc.verify_code, "tls_untrusted")
        return reason, f"certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return "tls_error", f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return "dns_nxdomain", f"host name does not resolve: {exc.strerror}"
        return "dns_error", f"host name lookup failed: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return "timeout", "timed out"
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connect_refused", "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connect_reset", "connection reset by the peer"
    if isinstance(exc, httpx.ProxyError):
        return _proxy_failure(str(exc))
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return _protocol_failure(str(exc))
    if isinstance(exc, httpx.InvalidURL):
        return "invalid_url", f"not a usable URL: {exc}"[:300]
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "connect_unreachable", f"network unreachable: {exc.strerror}"
    return None


def _protocol_failure(message: str) -> tuple[str, str]:
    """h11 refuses header lines that browsers read past (a missing colon, a space before
    it); the reason says so, with the line, instead of a generic protocol error."""
    if "Receive buffer too long" in message:  # h11's words for a head over httpcore's limit
        return "http_protocol", "response head larger than 100 KiB"
    message = readable(message)  # h11 quotes the bytes as a Python repr
    if message.startswith("illegal header line"):
        line = message.partition(":")[2].strip()
        return "http_malformed_header", f"malformed header line refused: {line}"[:300]
    if message.startswith("peer closed connection without sending complete message body"):
        # A valid answer cut short: say how much came (RFC 9112 §6.3: incomplete message).
        how = message.partition("(")[2].rstrip(")") or "incomplete"
        return "http_protocol", f"the server closed the connection inside the body: {how}"
    return "http_protocol", f"not a valid HTTP answer: {message}"[:300]


def _proxy_failure(message: str) -> tuple[str, str]:
    """A proxy's refusal of our CONNECT (httpcore gives `"<status> <phrase>"`)."""
    if message.startswith("407"):
        return "proxy_auth", f"the proxy wants credentials: {message}"[:300]
    return "proxy_error", f"the proxy refused the tunnel: {message}"[:300]


def make_probe_context(
    defaults: Defaults,
    base_dir: Path,
    browser: BrowserPool | None = None,
    *,
    call_budget: CallBudget | None = None,
) -> ProbeContext:
    """A context for `defaults`; relative files (the CA bundle) are taken from `base_dir`.
    It holds no connections. `browser`: the pool to keep (reconfigured for `defaults`), else
    a new one, not started; whoever made it closes it (`BrowserPool.close`). Without
    `call_budget`, test calls are counted in the history database of `defaults.history`."""
    ca_file = str(base_dir / defaults.tls.ca_file) if defaults.tls.ca_file else None
    shots = screenshot_dir(defaults, base_dir)
    if browser is None:
        browser = BrowserPool(defaults.browser, shots)
    else:
        browser.configure(defaults.browser, shots)
    if call_budget is None and defaults.sip is not None:
        call_budget = CallBudget(base_dir / defaults.history.path)
    slots = defaults.sip.max_concurrent_calls if defaults.sip else 1
    return ProbeContext(
        defaults,
        build_ssl_context(ca_file),
        build_resolver(defaults),
        browser,
        call_budget or CallBudget(),
        asyncio.Semaphore(slots),
    )


@contextlib.asynccontextmanager
async def probe_context(defaults: Defaults, base_dir: Path) -> AsyncIterator[ProbeContext]:
    """A context for a one-shot command; the browser, if a check started it, closes after."""
    ctx = make_probe_context(defaults, base_dir)
    try:
        yield ctx
    finally:
        if ctx.browser is not None:
            await ctx.browser.close()
