"""The status page: what a person sees without Grafana. Server-rendered with Jinja2
(autoescaped: every text from the registry or a scraped page is shown as text), no
JavaScript, refreshing itself."""

from __future__ import annotations

import asyncio
import datetime
import time
import zoneinfo
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.config import Channel, Registry
from monitor.history import History, HistoryHealth, HistoryUnavailable
from monitor.hours import hours_text, in_hours
from monitor.line_state import line_note, measured
from monitor.maintenance import active_window, window_end, window_text
from monitor.model import ProbeResult
from monitor.progress import banners, first_round, heading
from monitor.state import State

__all__ = ["StatusPageCache", "hours_text", "render_snapshot", "render_status_page", "snapshot"]

DAYS = 30
PAGE_TTL_SECONDS = 10.0  # the page refreshes itself every 30 s; reloads in between share one
_ENV = Environment(
    loader=PackageLoader("monitor", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


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
    note: str | None = None  # for a line nothing dialled: what it is instead of up/down
    measured: bool = True  # False: no uptime figures, no bars (see monitor.line_state)
    screenshot: str | None = None  # what a failed rendered check showed
    maintenance: str | None = None  # "until 04:00 (sun 02:00–04:00)" inside a window
    result: ProbeResult | None = None  # the latest result (SIP code, post-dial delay)


@dataclass(frozen=True)
class Snapshot:
    """What the page shows from the state, taken on the event loop in one pass (cheap: the
    definitions and results are immutable objects, only the references are copied), so the
    page can be rendered in a worker thread while the loop goes on probing."""

    registry: Registry
    channels: list[tuple[str, str, Channel, bool | None, ProbeResult | None]]
    findings: list[dict[str, Any]]
    shown_on: dict[tuple[str, str], list[str]]  # per deprecated channel, sources still showing it
    planned: dict[tuple[str, str], str]  # channels inside a maintenance window: until when
    heading: str
    banners: list[str]  # a rejected registry (history troubles: `HistoryHealth`)
    starting: str | None  # the first round's progress while it runs


def snapshot(state: State) -> Snapshot:
    moment = datetime.datetime.now(datetime.UTC)
    channels = [
        (org, ident, state.channel_defs[(org, ident)], current.up, current.result)
        for (org, ident), current in state.channels.items()  # what this replica probes
    ]
    planned = {
        (org, ident): text
        for org, ident, *_ in channels
        if (text := _maintenance_text(state, (org, ident), moment))
    }
    progress = first_round(state, time.time())
    return Snapshot(
        state.registry,
        channels,
        _findings(state),
        _deprecated_sources(state),
        planned,
        heading(state),
        banners(state),
        None if progress.done else progress.text(),
    )


def render_status_page(
    state: State,
    history: History | None,
    refresh_seconds: int = 30,
    health: HistoryHealth | None = None,
) -> str:
    """The page, rendered now on the calling thread (see `StatusPageCache` for the daemon)."""
    return render_snapshot(snapshot(state), history, refresh_seconds, health)


def render_snapshot(
    snap: Snapshot,
    history: History | None,
    refresh_seconds: int = 30,
    health: HistoryHealth | None = None,
) -> str:
    """The HTML of `snap`, with uptime from `history`; safe in a worker thread. A history
    that fails to answer leaves the uptime empty and says why on the page."""
    now = time.time()
    timezone = snap.registry.defaults.timezone
    tz = zoneinfo.ZoneInfo(timezone)
    offset = datetime.datetime.now(tz).utcoffset() or datetime.timedelta()
    today = int((now + offset.total_seconds()) // 86400)
    problem = _history_problem(health)
    daily: dict[tuple[str, str], dict[int, float]] = {}
    day_ago: dict[tuple[str, str], float] = {}
    month: dict[tuple[str, str], float] = {}
    if history is not None:
        try:
            daily = history.daily_uptime(now - DAYS * 86400, offset.total_seconds())
            day_ago = history.uptime_all(now - 86400)
            month = history.uptime_all(now - DAYS * 86400)
        except HistoryUnavailable as exc:
            problem = f"history cannot be read: {exc}"
    moment = datetime.datetime.now(datetime.UTC)
    organisations: dict[str, dict[str, list[_Row]]] = {}
    for org, ident, channel, up, result in snap.channels:
        days = daily.get((org, ident), {})
        planned = snap.planned.get((org, ident))
        word = _state_word(channel, up)
        row = _Row(
            org,
            channel,
            "maintenance" if planned and word != "deprecated" else word,
            _reason(result),
            in_hours(channel.hours, moment, timezone),
            day_ago.get((org, ident)),
            month.get((org, ident)),
            [days.get(d) for d in range(today - DAYS + 1, today + 1)],
            line_note(channel, result, snap.shown_on.get((org, ident), ())),
            measured(channel),
            _screenshot(result),
            planned,
            result,
        )
        if not row.measured:
            row.state, row.uptime_24h, row.uptime_30d, row.bars = "unmeasured", None, None, []
        organisations.setdefault(org, {}).setdefault(channel.service, []).append(row)
    return _ENV.get_template("status.html").render(
        organisations=organisations,
        findings=snap.findings,
        sources=sum(len(o.sources) for o in snap.registry.organizations),
        refresh=refresh_seconds,
        generated=datetime.datetime.now(tz).strftime("%Y-%m-%d %H:%M %Z"),
        timezone=timezone,
        heading=snap.heading,
        org_names={o.id: o.name or o.id for o in snap.registry.organizations},
        banners=snap.banners,
        starting=snap.starting,
        hours_text=hours_text,
        history_problem=problem,
        up=sum(r.state == "up" for o in organisations.values() for s in o.values() for r in s),
        down=sum(r.state == "down" for o in organisations.values() for s in o.values() for r in s),
        not_dialled=sum(
            not r.measured for o in organisations.values() for s in o.values() for r in s
        ),
        maintenance=sum(
            r.state == "maintenance" for o in organisations.values() for s in o.values() for r in s
        ),
    )


def _deprecated_sources(state: State) -> dict[tuple[str, str], list[str]]:
    """Per deprecated channel, the sources that still show it."""
    out: dict[tuple[str, str], list[str]] = {}
    for finding in state.all_findings():
        if finding.type == "deprecated_published" and finding.channel:
            out.setdefault((finding.org, finding.channel), []).append(finding.source)
    return out


def _history_problem(health: HistoryHealth | None) -> str | None:
    if health is None:
        return None
    if not health.available:
        return f"history is off: {health.error}"
    if health.failing:
        dropped = f"; {health.dropped} dropped" if health.dropped else ""
        return (
            f"history cannot be written: {health.error} "
            f"({health.write_errors} failed writes, {health.pending} waiting{dropped})"
        )
    return None


class StatusPageCache:
    """The daemon's status page: rendered in a worker thread, at most once per `ttl`
    seconds however many clients reload it (they share the one render in progress)."""

    def __init__(
        self,
        state: State,
        history: History | None,
        health: HistoryHealth | None = None,
        ttl: float = PAGE_TTL_SECONDS,
    ) -> None:
        self.state, self.history, self.health, self.ttl = state, history, health, ttl
        self._html: str | None = None
        self._at = 0.0
        self._rendering: asyncio.Future[str] | None = None

    async def html(self) -> str:
        if self._html is not None and time.monotonic() - self._at < self.ttl:
            return self._html
        if self._rendering is None:
            self._rendering = asyncio.ensure_future(self._render())
            self._rendering.add_done_callback(self._done)
        return await asyncio.shield(self._rendering)

    def _done(self, future: asyncio.Future[str]) -> None:
        self._rendering = None
        if not future.cancelled() and future.exception() is None:
            self._html, self._at = future.result(), time.monotonic()

    async def _render(self) -> str:
        if self.history is not None:
            await self.history.flush()
        snap = snapshot(self.state)
        return await asyncio.to_thread(render_snapshot, snap, self.history, 30, self.health)


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


def _reason(result: ProbeResult | None) -> str | None:
    if result is None or result.success:
        return None
    return f"{result.reason}: {result.message}" if result.message else result.reason


def _screenshot(result: Any) -> str | None:
    if result is None or result.success:
        return None
    return result.details.get("screenshot")


def _findings(state: State) -> list[dict[str, Any]]:
    """Findings with the registry's wording of the contact, deprecated ones first."""
    out = []
    for finding in state.all_findings():
        channel = state.channel_defs.get((finding.org, finding.channel or ""))
        source = state.sources.get((finding.org, finding.source))
        out.append(
            {
                "finding": finding,
                "shown_as": channel.contact if channel else None,
                "name": channel.name if channel else None,
                "screenshot": _screenshot(source.result) if source else None,
            }
        )
    return sorted(out, key=lambda f: f["finding"].type != "deprecated_published")
