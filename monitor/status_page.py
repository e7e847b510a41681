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
from monitor.maintenance import active_window, window_end, window_text
from monitor.progress import banners, first_round, heading
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
    state: str  # up | down | unknown | deprecated | maintenance
    reason: str | None
    open_now: bool
    uptime_24h: float | None
    uptime_30d: float | None
    bars: list[float | None]  # one per day, oldest first
    maintenance: str | None = None  # "until 04:00 (sun 02:00–04:00)" inside a window


def render_status_page(state: State, history: History | None, refresh_seconds: int = 30) -> str:
    now = time.time()
    tz = zoneinfo.ZoneInfo(state.registry.defaults.timezone)
    offset = datetime.datetime.now(tz).utcoffset() or datetime.timedelta()
    today = int((now + offset.total_seconds()) // 86400)
    daily = history.daily_uptime(now - DAYS * 86400, offset.total_seconds()) if history else {}
    day_ago = history.uptime_all(now - 86400) if history else {}
    month = history.uptime_all(now - DAYS * 86400) if history else {}
    moment = datetime.datetime.now(datetime.UTC)
    organisations: dict[str, dict[str, list[_Row]]] = {}
    for (org, ident), current in state.channels.items():  # what this replica probes
        channel = state.channel_defs[(org, ident)]
        days = daily.get((org, ident), {})
        planned = _maintenance_text(state, (org, ident), moment)
        word = _state_word(channel, current.up)
        row = _Row(
            org,
            channel,
            "maintenance" if planned and word != "deprecated" else word,
            _reason(current),
            in_hours(channel.hours, moment, state.registry.defaults.timezone),
            day_ago.get((org, ident)),
            month.get((org, ident)),
            [days.get(d) for d in range(today - DAYS + 1, today + 1)],
            planned,
        )
        organisations.setdefault(org, {}).setdefault(channel.service, []).append(row)
    progress = first_round(state, now)
    return _ENV.get_template("status.html").render(
        organisations=organisations,
        findings=_findings(state),
        refresh=refresh_seconds,
        generated=datetime.datetime.now(tz).strftime("%Y-%m-%d %H:%M %Z"),
        heading=heading(state),
        org_names={o.id: o.name or o.id for o in state.registry.organizations},
        banners=banners(state),
        starting=None if progress.done else progress.text(),
        timezone=state.registry.defaults.timezone,
        hours_text=hours_text,
        up=sum(r.state == "up" for o in organisations.values() for s in o.values() for r in s),
        down=sum(r.state == "down" for o in organisations.values() for s in o.values() for r in s),
        maintenance=sum(
            r.state == "maintenance" for o in organisations.values() for s in o.values() for r in s
        ),
    )


def _maintenance_text(state: State, key: tuple[str, str], moment: datetime.datetime) -> str | None:
    """`until 04:00 (sun 02:00–04:00)` while the channel is in a window, else None."""
    timezone = state.registry.defaults.timezone
    window = active_window(state.maintenance_windows.get(key, ()), moment, timezone)
    if window is None:
        return None
    end = window_end(window, moment, timezone)
    local_now = moment.astimezone(end.tzinfo)
    until = f"{end:%H:%M}" if end.date() == local_now.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"until {until} ({window_text(window, timezone)})"


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
