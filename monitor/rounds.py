"""One round of work, now: probe channels and scan sources concurrently under a cap.

The one-shot commands (`check`, `drift`) are a single round; the daemon schedules the same
probes one at a time.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config import Channel, MaintenanceWindow, Registry, Source
from monitor.drift import SourceKey, find_drift
from monitor.hours import hours_text, in_hours
from monitor.maintenance import active_window, window_text, windows_by_channel
from monitor.model import Finding, ProbeResult
from monitor.probers import HostLimits, peer_host, probe_channel, probe_context, probe_source

__all__ = ["ChannelResult", "Round", "UnknownChannel", "run_round", "select_channels"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ChannelResult:
    org: str
    channel: Channel
    result: ProbeResult
    # The maintenance window the probe ran in (`sun 02:00–04:00`), None outside any: a
    # failure inside one is planned work, not a problem (`check` exits 0 for it).
    maintenance: str | None = None
    # The channel's published hours (`mon-fri 09:00–18:00`) when the probe ran outside them,
    # None inside: a failure then is no problem, as the daemon's alerts take it.
    closed: str | None = None

    @property
    def in_maintenance(self) -> bool:
        return self.maintenance is not None


@dataclass
class Round:
    results: list[ChannelResult] = field(default_factory=list)
    scans: dict[SourceKey, ProbeResult] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


class UnknownChannel(Exception):  # noqa: N818 - names what went wrong
    """A `--channel` name matches no channel of the registry."""


def select_channels(registry: Registry, names: Iterable[str] = ()) -> list[tuple[str, Channel]]:
    """The channels named `org/id` or `id` (all of them when no names are given)."""
    every = [(org.id, channel) for org in registry.organizations for channel in org.channels]
    wanted = list(names)
    if not wanted:
        return every
    chosen: list[tuple[str, Channel]] = []
    for name in wanted:
        matches = [(o, c) for o, c in every if name in (c.id, f"{o}/{c.id}")]
        if not matches:
            raise UnknownChannel(f"no channel {name!r} in the registry")
        chosen += [m for m in matches if m not in chosen]
    return chosen


async def run_round(
    registry: Registry,
    base_dir: Path,
    channels: list[tuple[str, Channel]],
    *,
    scan_sources: bool = True,
    progress: Progress | None = None,
) -> Round:
    """Probe `channels` and (optionally) every source once; results keep registry order."""
    sources = (
        [(org.id, s) for org in registry.organizations for s in org.sources] if scan_sources else []
    )
    total, done = len(channels) + len(sources), 0
    limit = asyncio.Semaphore(registry.defaults.concurrency)
    # As the daemon does: at most per_host_concurrency probes against one host at once, so
    # a round of many channels on one site does not trip its rate limits.
    host_limits = HostLimits(registry.defaults.per_host_concurrency)

    async def bounded(target: Channel | Source, work: Awaitable[ProbeResult]) -> ProbeResult:
        nonlocal done
        async with host_limits.of(peer_host(target)), limit:
            result = await work
        done += 1
        if progress:
            progress(done, total)
        return result

    async with probe_context(registry.defaults, base_dir) as ctx:
        channel_results = asyncio.gather(*(bounded(c, probe_channel(c, ctx)) for _, c in channels))
        source_results = asyncio.gather(*(bounded(s, probe_source(s, ctx)) for _, s in sources))
        probed, scanned = await asyncio.gather(channel_results, source_results)
    windows = windows_by_channel(registry)
    round_ = Round(
        [
            ChannelResult(
                org,
                channel,
                result,
                _maintenance(registry, windows, org, channel, result),
                _closed(registry, channel, result),
            )
            for (org, channel), result in zip(channels, probed, strict=True)
        ],
        {(org, s.id): result for (org, s), result in zip(sources, scanned, strict=True)},
    )
    round_.findings = find_drift(registry, round_.scans)
    return round_


def _closed(registry: Registry, channel: Channel, result: ProbeResult) -> str | None:
    """The channel's hours when the probe (at `result.timestamp`) ran outside them."""
    moment = datetime.datetime.fromtimestamp(result.timestamp, datetime.UTC)
    if in_hours(channel.hours, moment, registry.defaults.timezone):
        return None
    return hours_text(channel.hours)


def _maintenance(
    registry: Registry,
    windows: dict[tuple[str, str], tuple[MaintenanceWindow, ...]],
    org: str,
    channel: Channel,
    result: ProbeResult,
) -> str | None:
    """The text of the window the probe of `channel` ran in (at `result.timestamp`)."""
    timezone = registry.defaults.timezone
    moment = datetime.datetime.fromtimestamp(result.timestamp, datetime.UTC)
    window = active_window(windows.get((org, channel.id), ()), moment, timezone)
    return None if window is None else window_text(window, timezone)
