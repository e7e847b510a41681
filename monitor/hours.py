"""Business hours: is a channel open now, in the registry's timezone."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Sequence

from monitor.config import HoursWindow, clock_minutes, parse_days

__all__ = ["hours_text", "in_hours"]


def in_hours(windows: Sequence[HoursWindow], now: datetime.datetime, timezone: str) -> bool:
    """True when `now` falls in any window (no windows: always open, 24/7)."""
    if not windows:
        return True
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    return any(
        local.weekday() in parse_days(w.days)
        and clock_minutes(w.from_) <= minute < clock_minutes(w.to)
        for w in windows
    )


def hours_text(windows: Sequence[HoursWindow]) -> str:
    """`mon-fri 09:00–18:00, sat 10:00–16:00`, or `24/7` without windows."""
    if not windows:
        return "24/7"
    return ", ".join(f"{w.days} {w.from_}–{w.to}".replace(" 00:00–24:00", "") for w in windows)
