"""`contact-monitor run`: the registry, the scheduler and the web server on one event loop,
with hot reload (SIGHUP or a change of the file) and a clean shutdown (SIGTERM/SIGINT)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from monitor.browser_metrics import BrowserCollector
from monitor.config import Registry
from monitor.history import History
from monitor.loader import RegistryInvalid, load_registry
from monitor.metrics import MonitorMetrics
from monitor.scheduler import ProbeScheduler
from monitor.sharding import Shard
from monitor.state import State
from monitor.web import create_app
from monitor.webconfig import BasicAuth, WebConfig

__all__ = ["Daemon", "parse_listen"]

log = structlog.get_logger("monitor.daemon")
WATCH_INTERVAL_SECONDS = 2.0
FLUSH_INTERVAL_SECONDS = 2.0  # a kill -9 loses at most this much history
PURGE_INTERVAL_SECONDS = 3600.0


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces) to (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid --listen {value!r}: use HOST:PORT, e.g. 127.0.0.1:9099")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    def __init__(
        self,
        config_path: Path,
        listen: tuple[str, int],
        history_path: Path | None = None,
        web: WebConfig | None = None,
        shard: Shard | None = None,
        location: str | None = None,
    ) -> None:
        self.config_path = config_path
        self.listen = listen
        self.history_path = history_path
        self.web = web or WebConfig()
        self.shard = shard or Shard(0, 1)
        # Labels on every probe-result series: where it was probed from, and by which shard.
        self.scope = {"location": location} if location else {}
        if self.shard.count > 1:
            self.scope["shard"] = str(self.shard)

        self._stop = asyncio.Event()
        self._file_stamp = self._stamp()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; a bad registry at start raises `RegistryInvalid`."""
        registry = load_registry(self.config_path)
        self.history = self._open_history(registry)
        self.state = State(registry, self.history, owns=self.shard.owns)
        self.state.record_reload(True)
        self.metrics = MonitorMetrics(self.state, self.scope, self.shard)
        self.scheduler = ProbeScheduler(self.state, self.metrics, self.config_path.resolve().parent)
        sock = self._bind()
        browser = self.scheduler.browser
        if browser is not None:
            self.metrics.registry.register(BrowserCollector(browser))
        app: Any = create_app(
            self.state,
            self.metrics,
            self.history,
            screenshots=browser.screenshots if browser else None,
        )
        if self.web.users:
            app = BasicAuth(app, self.web.users)
        server = _Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                ssl_certfile=self.web.ssl_certfile,
                ssl_keyfile=self.web.ssl_keyfile,
            )
        )
        self._install_signals()
        self.scheduler.start()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        chores = [
            asyncio.create_task(self._watch_file()),
            asyncio.create_task(self._keep_history()),
        ]
        log.info(
            "started",
            listen=f"{self.listen[0]}:{sock.getsockname()[1]}",
            config=str(self.config_path),
            channels=len(self.state.channels),
            sources=len(self.state.sources),
            registry_channels=len(self.state.channel_defs),
            shard=str(self.shard),
            location=self.scope.get("location"),
            pid=os.getpid(),
        )
        await self._stop.wait()
        log.info("stopping")
        for chore in chores:
            chore.cancel()
        await self.scheduler.shutdown()
        server.should_exit = True
        await serving
        await asyncio.to_thread(self.history.close)
        log.info("stopped")
        return 0

    def _open_history(self, registry: Registry) -> History:
        path = self.history_path or (
            self.config_path.resolve().parent / registry.defaults.history.path
        )
        history = History(path, registry.defaults.history.retention)
        log.info("history_opened", path=str(path), purged=history.purge())
        return history

    async def _keep_history(self) -> None:
        """Write queued history every few seconds; enforce retention every hour."""
        last_purge = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
            try:
                await self.history.flush()
                if time.monotonic() - last_purge > PURGE_INTERVAL_SECONDS:
                    last_purge = time.monotonic()
                    await asyncio.to_thread(self.history.purge)
            except sqlite3.Error as exc:  # a full disk must not stop the probing
                log.error("history_write_failed", error=str(exc))

    def _bind(self) -> socket.socket:
        host, port = self.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, reuse_port=False)
        sock.setblocking(False)
        return sock

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("sighup")))

    async def reload(self, trigger: str) -> bool:
        """Load the file again; swap it in only if it is valid."""
        try:
            registry = await asyncio.to_thread(load_registry, self.config_path)
        except RegistryInvalid as invalid:
            errors = [str(issue) for issue in invalid.issues]
            self.state.record_reload(False, errors)
            log.error("reload_failed", trigger=trigger, errors=errors)
            return False
        old = self.state.registry
        self.state.set_registry(registry)
        changes = self.scheduler.sync(old, registry)
        self.state.record_reload(True)
        log.info("reloaded", trigger=trigger, **changes)
        return True

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.config_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    async def _watch_file(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            stamp = self._stamp()
            if stamp != self._file_stamp:
                self._file_stamp = stamp
                await self.reload("file_changed")
