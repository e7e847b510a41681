"""The HTTP face of the daemon: /metrics, health, the JSON API (with OpenAPI) and a
status page, in one ASGI app served by uvicorn on the daemon's event loop."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from monitor import __version__
from monitor.browser import ScreenshotStore
from monitor.history import History, HistoryHealth, HistoryUnavailable
from monitor.hours import in_hours
from monitor.line_state import line_note, measured
from monitor.metrics import MonitorMetrics
from monitor.progress import first_round
from monitor.push import MAX_PUSH_BYTES, PushRejected, accept_push
from monitor.redact import mask_password
from monitor.state import State
from monitor.status_page import StatusPageCache, hours_text

__all__ = ["create_app"]


class ChannelOut(BaseModel):
    org: str
    channel: str
    name: str | None
    kind: str
    service: str
    status: Literal["active", "deprecated"]
    contact: str
    up: bool | None  # damped state; null until enough probes agree
    success: bool | None  # latest probe; null before the first
    reason: str | None
    message: str | None
    duration_seconds: float | None
    last_probe: float | None  # epoch seconds
    last_change: float | None
    details: dict[str, Any]
    # For a phone line nothing dialled: "number valid · not dialled", or for a deprecated one
    # "switched off · must not be published" (+ where it is still shown); else null.
    note: str | None = None
    in_maintenance: bool = False  # inside a maintenance window: not judged


class FindingOut(BaseModel):
    type: str
    org: str
    channel: str | None
    source: str
    contact: str | None
    evidence: str | None


class IncidentOut(BaseModel):
    org: str
    channel: str
    kind: str
    started_at: float  # epoch seconds
    ended_at: float | None  # null while still down
    duration_seconds: float
    reason: str | None
    message: str | None


class Uptime(BaseModel):
    h24: float | None = Field(alias="24h")
    d7: float | None = Field(alias="7d")
    d30: float | None = Field(alias="30d")


class ChannelDetail(ChannelOut):
    hours: str
    in_hours: bool
    uptime: Uptime  # share of successful probes; null without probes in the window
    incidents: list[IncidentOut]  # newest first


class Health(BaseModel):
    status: str
    probed: int | None = None
    total: int | None = None
    message: str | None = None  # while starting: "first round: 4 of 21 channels probed, ..."
    seconds_left: float | None = None  # while starting: estimate of the first round's rest
    # /readyz: push channels with no push yet; they wait for an outside tester and do not
    # hold readiness back (not counted in `probed`). Absent without push channels.
    waiting_for_push: int | None = None


async def _paced(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, made on the event loop (the state is the loop's, never a thread's), with
    the loop free to run probes while each is sent."""
    for chunk in chunks:
        yield chunk


class SourceOut(BaseModel):
    org: str
    source: str
    url: str
    render: str | None  # "browser": read as headless Chromium shows it
    success: bool | None  # latest scan; null before the first
    reason: str | None
    message: str | None
    last_scan: float | None  # epoch seconds
    details: dict[str, Any]  # a failed rendered scan links its `screenshot`


def create_app(
    state: State,
    metrics: MonitorMetrics,
    history: History | None = None,
    history_health: HistoryHealth | None = None,
    screenshots: ScreenshotStore | None = None,
) -> FastAPI:
    app = FastAPI(
        title="contact-monitor",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Published support contacts: probes, drift findings, metrics.",
    )
    # Prometheus asks for gzip; 10,000 channels are 17 MB of text. Level 1, because the
    # compression is paid at every scrape, in a worker thread beside the probes.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)
    page = StatusPageCache(state, history, history_health)

    def history_or_503() -> History | None:
        """The history to read, None when the daemon runs without one by choice; 503 with
        the reason when it should have one and cannot open it."""
        if history is None and history_health is not None and not history_health.available:
            raise HTTPException(503, f"history unavailable: {history_health.error}")
        return history

    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        chunks, content_type = metrics.exposition(request.headers.get("accept", ""))
        return StreamingResponse(_paced(chunks), media_type=content_type)

    @app.get("/healthz", response_model=Health, summary="The process is alive")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        summary="Registry loaded, first round done",
        responses={503: {"model": Health}},
    )
    async def readyz() -> Response:
        probed = sum(s.result is not None for s in state.channels.values()) + sum(
            s.result is not None for s in state.sources.values()
        )
        total = len(state.channels) + len(state.sources)
        pushed = [s for k, s in state.channels.items() if state.channel_defs[k].check == "push"]
        waiting = sum(s.result is None for s in pushed) if pushed else None  # no push: absent
        progress = first_round(state)
        ready = progress.done
        body = Health(
            status="ready" if ready else "starting",
            probed=probed,
            total=total,
            waiting_for_push=waiting,
            message=None if ready else progress.text(),
            seconds_left=None if ready else round(progress.seconds_left),
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ready else 503)

    @app.get(
        "/api/v1/channels",
        response_model=list[ChannelOut],
        summary="Every channel with its latest probe and damped state",
    )
    async def channels() -> list[ChannelOut]:
        return channel_rows(state)

    @app.get("/api/v1/findings", response_model=list[FindingOut], summary="Current drift findings")
    async def findings() -> list[FindingOut]:
        return [FindingOut(**f.to_json()) for f in state.all_findings()]

    @app.get(
        "/api/v1/channels/{org}/{channel}",
        response_model=ChannelDetail,
        response_model_by_alias=True,
        responses={404: {"description": "no such channel"}},
        summary="One channel: state, uptime over 24 h / 7 d / 30 d, recent incidents",
    )
    async def channel_detail(org: str, channel: str) -> ChannelDetail:
        row = next((r for r in channel_rows(state) if (r.org, r.channel) == (org, channel)), None)
        if row is None:
            raise HTTPException(404, f"no channel {org}/{channel}")
        definition = state.channel_defs[(org, channel)]
        uptime: dict[str, float | None] = {"24h": None, "7d": None, "30d": None}
        incidents: list[IncidentOut] = []
        readable = history_or_503() if measured(definition) else None  # nobody dialled: no uptime
        if readable is not None:
            await readable.flush()
            try:
                found, recent = await asyncio.to_thread(
                    _uptime_and_incidents, readable, org, channel
                )
            except HistoryUnavailable as exc:
                raise HTTPException(503, f"history unavailable: {exc}") from None
            uptime.update(found)
            incidents = [IncidentOut(**i.to_json()) for i in recent]
        return ChannelDetail(
            **row.model_dump(),
            hours=hours_text(definition.hours),
            in_hours=in_hours(
                definition.hours,
                datetime.datetime.now(datetime.UTC),
                state.registry.defaults.timezone,
            ),
            uptime=Uptime(**uptime),
            incidents=incidents,
        )

    @app.get(
        "/api/v1/incidents",
        response_model=list[IncidentOut],
        summary="Incidents, newest first (a channel down until it came up again)",
    )
    async def incidents(
        org: str | None = None,
        channel: str | None = None,
        since: float = Query(
            0.0, description="epoch seconds: incidents open at or after", allow_inf_nan=False
        ),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[IncidentOut]:
        readable = history_or_503()
        if readable is None:
            return []
        await readable.flush()
        try:
            found = await asyncio.to_thread(readable.incidents, org, channel, since, limit)
        except HistoryUnavailable as exc:
            raise HTTPException(503, f"history unavailable: {exc}") from None
        return [IncidentOut(**i.to_json()) for i in found]

    @app.get(
        "/api/v1/sources",
        response_model=list[SourceOut],
        summary="Every source page with its latest scan",
    )
    async def sources() -> list[SourceOut]:
        rows = []
        for (org, ident), current in state.sources.items():
            source, result = state.source_defs[(org, ident)], current.result
            rows.append(
                SourceOut(
                    org=org,
                    source=ident,
                    url=mask_password(source.url),
                    render=source.render,
                    success=result.success if result else None,
                    reason=result.reason if result else None,
                    message=result.message if result else None,
                    last_scan=result.timestamp if result else None,
                    details=result.details if result else {},
                )
            )
        return rows

    @app.get(
        "/api/v1/screenshots/{name}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "not kept"}},
        summary="What a failed rendered check showed (PNG); linked from `details.screenshot`",
    )
    async def screenshot(name: str) -> FileResponse:
        path = screenshots.path_of(name) if screenshots else None
        if path is None:
            raise HTTPException(404, "no such screenshot (only the newest are kept)")
        return FileResponse(path, media_type="image/png")

    @app.post(
        "/api/v1/push/{org}/{channel}",
        status_code=202,
        summary="An outside tester reports a channel on push (Bearer token)",
        responses={
            **{code: {"description": text} for code, text in PUSH_ERRORS.items()},
        },
    )
    async def push(org: str, channel: str, request: Request) -> JSONResponse:
        try:
            body = await read_capped(request, MAX_PUSH_BYTES)
            result = accept_push(state, org, channel, request.headers.get("authorization"), body)
        except PushRejected as rejected:
            headers = {"WWW-Authenticate": "Bearer"} if rejected.status == 401 else None
            return JSONResponse({"error": rejected.message}, rejected.status, headers=headers)
        return JSONResponse({"accepted": True, "success": result.success}, 202)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def status_page() -> str:
        return await page.html()

    return app


def _uptime_and_incidents(
    history: History, org: str, channel: str
) -> tuple[dict[str, float | None], list[Any]]:
    """Uptime over 24 h / 7 d / 30 d and the 20 latest incidents; in a worker thread."""
    now = time.time()
    windows = (("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400))
    uptime = {window: history.uptime(org, channel, now - seconds) for window, seconds in windows}
    return uptime, history.incidents(org, channel, limit=20)


PUSH_ERRORS = {
    401: "wrong or missing bearer token",
    404: "no such channel",
    409: "the channel is not on push",
    413: "body too large",
    421: "another replica's channel",
    422: "body does not match the schema",
}


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, or `PushRejected(413)` as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PushRejected(413, f"push body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PushRejected(413, f"push body over {limit} bytes")
    return bytes(body)


def channel_rows(state: State) -> list[ChannelOut]:
    rows = []
    shown_on: dict[tuple[str, str], list[str]] = {}
    for finding in state.all_findings():
        if finding.type == "deprecated_published" and finding.channel:
            shown_on.setdefault((finding.org, finding.channel), []).append(finding.source)
    for (org, ident), current in state.channels.items():  # what this replica probes
        channel = state.channel_defs[(org, ident)]
        result = current.result
        rows.append(
            ChannelOut(
                org=org,
                channel=ident,
                name=channel.name,
                kind=channel.kind,
                service=channel.service,
                status=channel.status,
                contact=channel.contact,
                # A numbering check or a switched-off line is never up or down (line_state).
                up=current.up if measured(channel) else None,
                success=result.success if result else None,
                reason=result.reason if result else None,
                message=result.message if result else None,
                duration_seconds=result.duration_seconds if result else None,
                last_probe=result.timestamp if result else None,
                last_change=current.changed_at,
                details=result.details if result else {},
                note=line_note(channel, result, shown_on.get((org, ident), ())),
                in_maintenance=state.in_maintenance((org, ident)),
            )
        )
    return rows
