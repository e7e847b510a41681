"""Maintenance windows: is a channel in planned work now, and until when.

A channel's windows are the registry defaults', its organisation's and its own, together.
Inside one, `contact_channel_in_maintenance` is 1, alerts stay quiet and the probes count
neither for nor against uptime and the availability objective.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Sequence

from monitor.config import MaintenanceWindow, Registry, clock_minutes, parse_days

__all__ = ["active_window", "in_maintenance", "window_end", "window_text", "windows_by_channel"]

ChannelKey = tuple[str, str]


def windows_by_channel(registry: Registry) -> dict[ChannelKey, tuple[MaintenanceWindow, ...]]:
    """Every channel with at least one window -> its windows (defaults, org, own)."""
    out: dict[ChannelKey, tuple[MaintenanceWindow, ...]] = {}
    for org in registry.organizations:
        shared = registry.defaults.maintenance + org.maintenance
        for channel in org.channels:
            windows = shared + channel.maintenance
            if windows:
                out[(org.id, channel.id)] = windows
    return out


def active_window(
    windows: Sequence[MaintenanceWindow], now: datetime.datetime, timezone: str
) -> MaintenanceWindow | None:
    """The first window `now` (aware) falls in, or None."""
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    return next((w for w in windows if _covers(w, now, local)), None)


def in_maintenance(
    windows: Sequence[MaintenanceWindow], now: datetime.datetime, timezone: str
) -> bool:
    """True when `now` (aware) falls in any of `windows`."""
    return bool(windows) and active_window(windows, now, timezone) is not None


def window_end(
    window: MaintenanceWindow, now: datetime.datetime, timezone: str
) -> datetime.datetime:
    """When `window`, which covers `now`, ends, in the registry's timezone."""
    tz = zoneinfo.ZoneInfo(timezone)
    if window.end is not None:
        return window.end.astimezone(tz)
    local = now.astimezone(tz)
    end_minutes = clock_minutes(window.to or "24:00")
    end = local.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(
        minutes=end_minutes
    )
    return end if end > local else end + datetime.timedelta(days=1)


def window_text(window: MaintenanceWindow, timezone: str) -> str:
    """`sun 02:00–04:00` or `2026-12-01 01:00 – 2026-12-01 03:00` (registry's timezone)."""
    if window.start is not None and window.end is not None:
        tz = zoneinfo.ZoneInfo(timezone)
        start, end = window.start.astimezone(tz), window.end.astimezone(tz)
        return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"
    return f"{window.days or 'daily'} {window.from_}–{window.to}"


def _covers(window: MaintenanceWindow, now: datetime.datetime, local: datetime.datetime) -> bool:
    if window.start is not None and window.end is not None:
        return window.start <= now < window.end
    days = parse_days(window.days or "mon-sun")
    minute = local.hour * 60 + local.minute
    start, end = clock_minutes(window.from_ or "00:00"), clock_minutes(window.to or "24:00")
    if start < end:
        return local.weekday() in days and start <= minute < end
    # Past midnight: from `from` on a listed day to `to` the next morning.
    yesterday = (local.weekday() - 1) % 7
    return (local.weekday() in days and minute >= start) or (yesterday in days and minute < end)
