"""Probers: one module per kind of probe, all `async fn(target, ctx) -> ProbeResult`,
none of them ever raising. `PROBERS` names them; `probe_channel` picks a channel's."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from urllib.parse import urlsplit

from monitor.config import Channel, EmailChannel, Source, TcpChannel, WebChannel
from monitor.model import ProbeResult
from monitor.probers._base import (
    ProbeContext,
    Prober,
    make_probe_context,
    probe_context,
)
from monitor.probers.http import probe_http
from monitor.probers.mx import probe_mx
from monitor.probers.phone import probe_phone
from monitor.probers.push import probe_push
from monitor.probers.rendered import probe_rendered_page
from monitor.probers.sip import probe_sip
from monitor.probers.smtp import probe_smtp
from monitor.probers.source import probe_source
from monitor.probers.tcp import probe_tcp
from monitor.probers.websocket import probe_websocket

__all__ = [
    "PROBERS",
    "HostLimits",
    "ProbeContext",
    "Prober",
    "make_probe_context",
    "peer_host",
    "probe_channel",
    "probe_context",
    "probe_source",
    "probers_for",
]

PROBERS: dict[str, Prober] = {
    "http": probe_http,
    "mx": probe_mx,
    "smtp": probe_smtp,
    "tcp": probe_tcp,
    "phone": probe_phone,
    "source": probe_source,
    "browser": probe_rendered_page,
    "websocket": probe_websocket,
    "sip": probe_sip,
    "push": probe_push,
}

_BY_KIND = {
    "phone": ("phone",),
    "web": ("http",),
    "chat": ("http",),
    "social": ("http",),
    "tcp": ("tcp",),
}


def peer_host(target: Channel | Source) -> str | None:
    """The peer a probe of `target` talks to, for the per-host cap
    (`defaults.per_host_concurrency`); None: no network, no cap."""
    if isinstance(target, Source | WebChannel):
        return urlsplit(target.url).hostname
    if isinstance(target, EmailChannel):
        return target.domain
    if isinstance(target, TcpChannel):
        return target.host
    return None


class HostLimits:
    """At most `per_host` probes against one peer host at once
    (`defaults.per_host_concurrency`): one semaphore per host, made at its first probe.
    The daemon's scheduler and `check`'s rounds both keep it."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._by_host: dict[str, asyncio.Semaphore] = {}

    def of(self, host: str | None) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        """The limit to hold while probing `host` (`peer_host`); none for no host."""
        if host is None:
            return contextlib.nullcontext()
        if host not in self._by_host:
            self._by_host[host] = asyncio.Semaphore(self._per_host)
        return self._by_host[host]


def probers_for(channel: Channel) -> tuple[str, ...]:
    """Names of the probers a channel needs, in order; each runs only if the one before passed."""
    if channel.check == "push":
        return ("push",)
    if channel.kind == "phone" and channel.check == "sip":
        return ("sip",)
    if channel.kind == "email":
        # The SMTP probe looks the MX hosts up itself, and fails with the MX reasons.
        return ("smtp",) if channel.smtp != "off" else ("mx",)
    if channel.kind in ("web", "chat", "social") and channel.is_websocket:
        return ("websocket",)
    if channel.kind in ("web", "chat", "social") and channel.render == "browser":
        return ("browser",)
    return _BY_KIND[channel.kind]


async def probe_channel(channel: Channel, ctx: ProbeContext) -> ProbeResult:
    """Runs the channel's probers in turn; the result is the first failure or the last success,
    with every prober's details and the total duration."""
    details: dict = {}
    total = 0.0
    result = ProbeResult(False, "no_prober", "no prober for this channel")
    for name in probers_for(channel):
        result = await PROBERS[name](channel, ctx)
        details.update(result.details)
        total += result.duration_seconds
        if not result.success:
            break
    return dataclasses.replace(result, details=details, duration_seconds=round(total, 6))
