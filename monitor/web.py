"""The HTTP face of the daemon: /metrics, health, the JSON API (with OpenAPI) and a
status page, in one ASGI app served by uvicorn on the daemon's event loop."""

from __future__ import annotations

import html
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from monitor import __version__
from monitor.metrics import MonitorMetrics
from monitor.state import State

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


class FindingOut(BaseModel):
    type: str
    org: str
    channel: str | None
    source: str
    contact: str | None
    evidence: str | None


class Health(BaseModel):
    status: str
    probed: int | None = None
    total: int | None = None


def create_app(state: State, metrics: MonitorMetrics) -> FastAPI:
    app = FastAPI(
        title="contact-monitor",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Published support contacts: probes, drift findings, metrics.",
    )

    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), media_type=content_type)

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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def status_page() -> str:
        return render_status(state)

    return app


def channel_rows(state: State) -> list[ChannelOut]:
    rows = []
    for (org, ident), channel in state.channel_defs.items():
        current = state.channels[(org, ident)]
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
            )
        )
    return rows


def render_status(state: State) -> str:
    """A plain page: channels and findings; everything from outside is escaped."""

    def cell(value: object) -> str:
        return f"<td>{html.escape('-' if value is None else str(value))}</td>"

    rows = "".join(
        "<tr>"
        + "".join(
            cell(v)
            for v in (
                r.org,
                r.channel,
                r.kind,
                r.service,
                r.status,
                r.contact,
                {True: "up", False: "DOWN"}.get(r.up, "?"),
                r.reason,
            )
        )
        + "</tr>"
        for r in channel_rows(state)
    )
    findings = "".join(
        "<tr>"
        + "".join(cell(v) for v in (f.type, f.org, f.source, f.channel, f.contact, f.evidence))
        + "</tr>"
        for f in state.all_findings()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>contact-monitor</title>"
        "<meta http-equiv='refresh' content='30'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'></head><body>"
        "<h1>contact-monitor</h1><h2>Drift findings</h2><table>"
        "<tr><th>finding</th><th>org</th><th>source</th><th>channel</th><th>contact</th>"
        f"<th>evidence</th></tr>{findings}</table><h2>Channels</h2><table>"
        "<tr><th>org</th><th>channel</th><th>kind</th><th>service</th><th>status</th>"
        f"<th>contact</th><th>state</th><th>reason</th></tr>{rows}</table></body></html>"
    )
