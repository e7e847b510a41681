"""The status page: what a person sees without Grafana. Server-rendered with Jinja2
(autoescaped: every text from the registry or a scraped page is shown as text), no
JavaScript, refreshing itself."""

from __future__ import annotations

import datetime
import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.config import Channel, HoursWindow
from monitor.history import History
from monitor.hours import in_hours
from monitor.line_state import line_note, measured
from monitor.state import State

__all__ = ["hours_text", "render_status_page"]

DAYS = 30
_ENV = Environment(
    loader=PackageLoader("monitor", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def hours_text(windows: Sequence[HoursWindow]) -> str:
    if not windows:
        return "24/7"
    return ", ".join(f"{w.days} {w.from_}–{w.to}".replace(" 00:00–24:00", "") for w in windows)


@dataclass
class _Row:
    org: str
    channel: Channel
    state: str  # up | down | unknown | deprecated
    reason: str | None
    open_now: bool
    uptime_24h: float | None
    uptime_30d: float | None
    bars: list[float | None]  # one per day, oldest first
    note: str | None = None  # for a line nothing dialled: what it is instead of up/down
    measured: bool = True  # False: no uptime figures, no bars (see monitor.line_state)
    channel_state: Any = None  # the latest result's details (SIP code, post-dial delay)


def render_status_page(state: State, history: History | None, refresh_seconds: int = 30) -> str:
    now = time.time()
    tz = zoneinfo.ZoneInfo(state.registry.defaults.timezone)
    offset = datetime.datetime.now(tz).utcoffset() or datetime.timedelta()
    today = int((now + offset.total_seconds()) // 86400)
    daily = history.daily_uptime(now - DAYS * 86400, offset.total_seconds()) if history else {}
    day_ago = history.uptime_all(now - 86400) if history else {}
    month = history.uptime_all(now - DAYS * 86400) if history else {}
    moment = datetime.datetime.now(datetime.UTC)
    shown_on = _deprecated_sources(state)
    organisations: dict[str, dict[str, list[_Row]]] = {}
    for (org, ident), current in state.channels.items():  # what this replica probes
        channel = state.channel_defs[(org, ident)]
        days = daily.get((org, ident), {})
        row = _Row(
            org,
            channel,
            _state_word(channel, current.up),
            _reason(current),
            in_hours(channel.hours, moment, state.registry.defaults.timezone),
            day_ago.get((org, ident)),
            month.get((org, ident)),
            [days.get(d) for d in range(today - DAYS + 1, today + 1)],
            line_note(channel, current.result, shown_on.get((org, ident), ())),
            measured(channel),
            current,
        )
        if not row.measured:
            row.state, row.uptime_24h, row.uptime_30d, row.bars = "unmeasured", None, None, []
        organisations.setdefault(org, {}).setdefault(channel.service, []).append(row)
    return _ENV.get_template("status.html").render(
        organisations=organisations,
        findings=_findings(state),
        refresh=refresh_seconds,
        generated=datetime.datetime.now(tz).strftime("%Y-%m-%d %H:%M %Z"),
        timezone=state.registry.defaults.timezone,
        hours_text=hours_text,
        up=sum(r.state == "up" for o in organisations.values() for s in o.values() for r in s),
        down=sum(r.state == "down" for o in organisations.values() for s in o.values() for r in s),
        not_dialled=sum(
            not r.measured for o in organisations.values() for s in o.values() for r in s
        ),
    )


def _deprecated_sources(state: State) -> dict[tuple[str, str], list[str]]:
    """Per deprecated channel, the sources that still show it."""
    out: dict[tuple[str, str], list[str]] = {}
    for finding in state.all_findings():
        if finding.type == "deprecated_published" and finding.channel:
            out.setdefault((finding.org, finding.channel), []).append(finding.source)
    return out


def _state_word(channel: Channel, up: bool | None) -> str:
    if channel.status == "deprecated":
        return "deprecated"
    return {True: "up", False: "down"}.get(up, "unknown")


def _reason(current: Any) -> str | None:
    result = current.result
    if result is None or result.success:
        return None
    return f"{result.reason}: {result.message}" if result.message else result.reason


def _findings(state: State) -> list[dict[str, Any]]:
    """Findings with the registry's wording of the contact, deprecated ones first."""
    out = []
    for finding in state.all_findings():
        channel = state.channel_defs.get((finding.org, finding.channel or ""))
        out.append(
            {
                "finding": finding,
                "shown_as": channel.contact if channel else None,
                "name": channel.name if channel else None,
            }
        )
    return sorted(out, key=lambda f: f["finding"].type != "deprecated_published")
