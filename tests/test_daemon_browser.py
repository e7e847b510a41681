"""The daemon with `render: browser` and WebSocket channels, end to end: findings from a
rendered page, a failed rendered check's screenshot linked from the API and the status page,
and no Chromium left behind after SIGTERM."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import wait_for
from servers import HttpServer, page
from test_daemon import write
from websockets.asyncio.server import ServerConnection, serve

SCRIPTED = """<!doctype html><html><body><div id="c"></div><script>
document.getElementById('c').textContent = 'Old line: 8 (800) 234-70-00';
</script></body></html>"""


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A WebSocket echo server on its own loop in a thread (the daemon is another process)."""
    ready: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            ready.append(server.sockets[0].getsockname()[1])
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    wait_for(lambda: ready, "websocket server")
    yield ready[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)


def chromium_children(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [c for c in children if "chromium" in c.name().lower()]


def test_daemon_renders_pages_links_screenshots_and_leaves_no_browser(
    http_server: HttpServer, echo_server: int, tmp_path: Path, start_daemon: Any
):
    """Rendered source -> deprecated finding; failed rendered channel -> a PNG the API and
    the status page link to; ws channel up; SIGTERM ends Chromium too."""
    http_server.routes["/contacts"] = page(SCRIPTED)
    http_server.routes["/help"] = page("<p>Down for maintenance</p>", status=503)
    config = write(
        tmp_path / "channels.yaml",
        [
            {
                "id": "old-hotline",
                "kind": "phone",
                "phone": "8 (800) 234-70-00",
                "status": "deprecated",
            },
            {"id": "help", "kind": "web", "url": http_server.url("/help"), "render": "browser"},
            {
                "id": "chat-backend",
                "kind": "chat",
                "url": f"ws://127.0.0.1:{echo_server}/ws",
                "expect": {"send": "ping", "receive_regex": "^ping$"},
            },
        ],
        [{"id": "contacts", "url": http_server.url("/contacts"), "render": "browser"}],
        interval="8s",
        source_interval="8s",
        timeout="8s",
    )
    daemon = start_daemon(config)

    def channel(ident: str) -> dict[str, Any] | None:
        rows = daemon.get("/api/v1/channels").json()
        row = next(r for r in rows if r["channel"] == ident)
        return row if row["success"] is not None else None

    help_row = wait_for(lambda: channel("help"), "rendered channel probed", timeout=60)
    assert (help_row["reason"], help_row["details"]["status_code"]) == ("http_status", 503)
    shot = daemon.get(help_row["details"]["screenshot"])
    assert shot.headers["content-type"] == "image/png"
    assert shot.content.startswith(b"\x89PNG")
    assert help_row["details"]["screenshot"] in daemon.get("/").text
    assert daemon.get("/api/v1/screenshots/..%2Fchannels.yaml").status_code == 404

    chat = wait_for(lambda: channel("chat-backend"), "websocket channel probed", timeout=30)
    assert chat["success"] is True, chat

    def deprecated() -> list[dict[str, Any]]:
        return [
            f for f in daemon.get("/api/v1/findings").json() if f["type"] == "deprecated_published"
        ]

    assert wait_for(deprecated, "deprecated finding from the rendered page", timeout=60)
    sources = daemon.get("/api/v1/sources").json()
    assert sources[0]["render"] == "browser"
    assert sources[0]["details"]["rendered"] is True

    text = daemon.metrics_text()
    assert daemon.value("contact_browser_running", text) == 1
    assert daemon.value("contact_browser_starts_total", text) >= 1
    assert daemon.value("contact_browser_memory_bytes", text) > 10 * 2**20
    linted = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert [
        line
        for line in (linted.stdout + linted.stderr).splitlines()
        if line.startswith("contact_browser")
    ] == []

    assert chromium_children(daemon.proc.pid)
    browsers = chromium_children(daemon.proc.pid)
    assert daemon.stop() == 0
    _, alive = psutil.wait_procs(browsers, timeout=10)
    assert alive == []


@pytest.mark.parametrize(("render", "code"), [("browser", 1), (None, 0)])
def test_drift_command_sees_script_rendered_number_only_with_render_browser(
    render: str | None, code: int, http_server: HttpServer, tmp_path: Path
):
    """`drift` exits 1 with the deprecated finding when the source is rendered, 0 (nothing
    seen) when it is not: the reason to turn `render: browser` on."""
    http_server.routes["/contacts"] = page(SCRIPTED)
    source: dict[str, Any] = {"id": "contacts", "url": http_server.url("/contacts")}
    if render:
        source["render"] = render
    config = write(
        tmp_path / "channels.yaml",
        [{"id": "old", "kind": "phone", "phone": "8 (800) 234-70-00", "status": "deprecated"}],
        [source],
        interval="10s",
        source_interval="10s",
        timeout="10s",
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "drift", "--config", str(config), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == code, done.stderr
    findings = json.loads(done.stdout)
    found = [(f["type"], f["channel"]) for f in findings.get("findings", findings)]
    assert (("deprecated_published", "old") in found) == bool(render)


async def test_rendered_pages_waiting_for_the_browser_hold_no_probe_slot(
    http_server: HttpServer, tmp_path: Path
):
    """With one probe slot and one browser page, three slow rendered sources queue for the
    browser while a web channel is still probed at once."""
    import time

    from monitor.config import Registry
    from monitor.metrics import MonitorMetrics
    from monitor.scheduler import ProbeScheduler
    from monitor.state import State

    def slow(handler: Any) -> None:
        time.sleep(2)
        page("<p>slow</p>")(handler)

    http_server.routes["/slow"] = slow
    http_server.routes["/"] = page("<p>ok</p>")
    registry = Registry.model_validate(
        {
            "version": 1,
            "defaults": {"timeout": "8s", "concurrency": 1, "browser": {"concurrency": 1}},
            "organizations": [
                {
                    "id": "acme",
                    "sources": [
                        {"id": f"s{i}", "url": http_server.url("/slow"), "render": "browser"}
                        for i in range(3)
                    ],
                    "channels": [{"id": "site", "kind": "web", "url": http_server.url("/")}],
                }
            ],
        }
    )
    state = State(registry)
    scheduler = ProbeScheduler(state, MonitorMetrics(state), tmp_path)
    rendering = [asyncio.create_task(scheduler._probe(f"source:acme/s{i}")) for i in range(3)]
    try:
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await asyncio.wait_for(scheduler._probe("channel:acme/site"), 5)
        assert time.monotonic() - started < 1.5
        assert state.channels[("acme", "site")].result.success
        await asyncio.wait_for(asyncio.gather(*rendering), 30)
        assert all(state.sources[("acme", f"s{i}")].result.success for i in range(3))
    finally:
        for task in rendering:
            task.cancel()
        await scheduler.shutdown()
