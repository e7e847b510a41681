"""The HTTP face of the daemon: /metrics, health, the JSON API (with OpenAPI) and a
status page, in one ASGI app served by uvicorn on the daemon's event loop."""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from monitor import __version__
from monitor.history import History
from monitor.hours import in_hours
from monitor.line_state import line_note, measured
from monitor.metrics import MonitorMetrics
from monitor.push import MAX_PUSH_BYTES, PushRejected, accept_push
from monitor.state import State
from monitor.status_page import hours_text, render_status_page

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


async def _paced(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, made on the event loop (the state is the loop's, never a thread's), with
    the loop free to run probes while each is sent."""
    for chunk in chunks:
        yield chunk


def create_app(state: State, metrics: MonitorMetrics, history: History | None = None) -> FastAPI:
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
        ready = state.first_round_done()
        body = Health(status="ready" if ready else "starting", probed=probed, total=total)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

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
        if history is not None and measured(definition):  # a line nobody dialled has no uptime
            await history.flush()
            now = time.time()
            for window, seconds in (("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400)):
                uptime[window] = history.uptime(org, channel, now - seconds)
            incidents = [
                IncidentOut(**i.to_json()) for i in history.incidents(org, channel, limit=20)
            ]
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
        since: float = Query(0.0, description="epoch seconds: incidents open at or after"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[IncidentOut]:
        if history is None:
            return []
        await history.flush()
        return [
            IncidentOut(**i.to_json())
            for i in history.incidents(org, channel, since=since, limit=limit)
        ]

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
        if history is not None:
            await history.flush()
        return render_status_page(state, history)

    return app


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
                up=current.up,
                success=result.success if result else None,
                reason=result.reason if result else None,
                message=result.message if result else None,
                duration_seconds=result.duration_seconds if result else None,
                last_probe=result.timestamp if result else None,
                last_change=current.changed_at,
                details=result.details if result else {},
                note=line_note(channel, result, shown_on.get((org, ident), ())),
            )
        )
    return rows
