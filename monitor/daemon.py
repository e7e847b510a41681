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
from monitor.connections import CappedListener, TimedH11Protocol, connection_cap
from monitor.heap import settle
from monitor.history import History, HistoryHealth, HistoryLocked, HistoryUnavailable
from monitor.history_metrics import HistoryCollector
from monitor.loader import (
    ConfigIssue,
    RegistryInvalid,
    check_registry,
    registry_base,
    registry_stamp,
)
from monitor.metrics import MonitorMetrics
from monitor.scheduler import ProbeScheduler
from monitor.self_metrics import SelfCollector
from monitor.server_tls import ServerTls
from monitor.sharding import Shard
from monitor.state import State
from monitor.web import create_app
from monitor.webconfig import BasicAuth, WebConfig

__all__ = ["Daemon", "parse_listen"]

log = structlog.get_logger("monitor.daemon")
WATCH_INTERVAL_SECONDS = 2.0
# A burst of SIGHUPs or writes becomes one reload once the file has been still this long.
RELOAD_SETTLE_SECONDS = 0.5
FLUSH_INTERVAL_SECONDS = 2.0  # a kill -9 loses at most this much history
PURGE_INTERVAL_SECONDS = 3600.0
WEB_GRACE_SECONDS = 1.0  # at stop, what web clients get to finish before being cut off
REPEAT_ERROR_LOG_SECONDS = 60.0  # a write error that persists is logged again this often


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

        self.base_dir = registry_base(config_path)
        self.history_health: HistoryHealth | None = None
        self.tls: ServerTls | None = None
        self._stop = asyncio.Event()
        self._file_stamp = self._stamp()
        self._reload_wanted = asyncio.Event()
        self._reload_trigger = "sighup"

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; a bad registry at start raises `RegistryInvalid`."""
        registry, warnings = check_registry(self.config_path)
        _log_registry_warnings(warnings, "start")
        try:
            self.history = self._open_history(registry)
        except HistoryLocked as locked:
            log.error("history_locked", error=str(locked))
            return 2
        self.state = State(registry, self.history, owns=self.shard.owns)
        self.state.record_reload(True)
        self.metrics = MonitorMetrics(self.state, self.scope, self.shard)
        self.metrics.registry.register(HistoryCollector(lambda: self.history_health))
        self.scheduler = ProbeScheduler(self.state, self.metrics, self.base_dir)
        sock = self._bind(connection_cap(registry.defaults.concurrency))
        self.metrics.registry.register(SelfCollector(self.state, sock))
        browser = self.scheduler.browser
        if browser is not None:
            self.metrics.registry.register(BrowserCollector(browser))
        app: Any = create_app(
            self.state,
            self.metrics,
            self.history,
            self.history_health,
            screenshots=browser.screenshots if browser else None,
        )
        if self.web.users:
            app = BasicAuth(app, self.web.users)
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            http=TimedH11Protocol,
            lifespan="off",
            timeout_graceful_shutdown=None,  # the daemon bounds it: _stop_web
        )
        config.load()
        if self.web.ssl_certfile and self.web.ssl_keyfile:
            self.tls = ServerTls(
                self.web.ssl_certfile, self.web.ssl_keyfile, self.web.ssl_min_version
            )
            config.ssl = self.tls.context
        server = _Server(config)
        self._install_signals()
        settle()  # what start-up built lives as long as the registry: out of full collections
        self.scheduler.start()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        chores = [
            asyncio.create_task(self._watch_file()),
            asyncio.create_task(self._reloader()),
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
            max_web_connections=sock.cap,
            pid=os.getpid(),
        )
        await self._stop.wait()
        log.info("stopping")
        for chore in chores:
            chore.cancel()
        web = asyncio.create_task(self._stop_web(server, serving))
        await self.scheduler.shutdown()  # probes in flight get their timeout
        await web
        if self.history is not None:
            # Unmeasured time after a clean stop must not grow open incidents: see README.
            self.history.monitor_stopped(time.time())
            await self._close_history(self.history)
        log.info("stopped")
        return 0

    async def _stop_web(self, server: _Server, serving: asyncio.Task[None]) -> None:
        """Stop accepting; give open connections `WEB_GRACE_SECONDS`, then cut them off (a
        client that stopped reading `/metrics` must not hold the process)."""
        server.should_exit = True
        done, _ = await asyncio.wait({serving}, timeout=WEB_GRACE_SECONDS + 0.2)
        if done:
            return
        server.force_exit = True
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        done, _ = await asyncio.wait({serving}, timeout=1.0)
        if not done:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)

    def _open_history(self, registry: Registry) -> History | None:
        """The history database, locked for this daemon; None (and a flagged health, one
        log line naming the file) if it cannot be opened. `HistoryLocked` goes up."""
        path = self.history_path or (self.base_dir / registry.defaults.history.path)
        try:
            history = History(path, registry.defaults.history.retention, lock=True)
        except HistoryLocked:
            raise
        except HistoryUnavailable as exc:
            self.history_health = HistoryHealth(available=False, error=str(exc))
            log.error("history_unavailable", path=str(path), error=str(exc))
            return None
        self.history_health = history.health
        try:
            purged: int | None = history.purge()
        except (sqlite3.Error, OSError) as exc:
            purged = None
            log.warning("history_purge_failed", path=str(path), error=str(exc))
        log.info("history_opened", path=str(path), purged=purged)
        return history

    async def _keep_history(self) -> None:
        """Write queued history every few seconds; enforce retention every hour. A failing
        write is logged with its cause when it starts, every minute while it lasts, and
        when it ends; the writes wait in the (bounded) queue for the next try."""
        history = self.history
        if history is None:
            return
        health = history.health
        last_purge = time.monotonic()
        last_logged = -REPEAT_ERROR_LOG_SECONDS
        recreated = health.recreated
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
            was_failing = health.failing
            if not await history.flush():
                if not was_failing or time.monotonic() - last_logged > REPEAT_ERROR_LOG_SECONDS:
                    last_logged = time.monotonic()
                    log.error(
                        "history_write_failed",
                        error=health.error,
                        pending=health.pending,
                        dropped=health.dropped,
                        errors=health.write_errors,
                    )
                continue
            if was_failing:
                log.info("history_write_recovered", dropped=health.dropped)
            if health.recreated != recreated:
                recreated = health.recreated
                log.warning("history_recreated", path=str(history.path))
            if time.monotonic() - last_purge > PURGE_INTERVAL_SECONDS:
                last_purge = time.monotonic()
                try:
                    await asyncio.to_thread(history.purge)
                except (sqlite3.Error, OSError) as exc:
                    log.warning("history_purge_failed", error=str(exc))

    async def _close_history(self, history: History) -> None:
        await history.flush()
        if history.health.failing:
            log.warning(
                "history_unsaved_at_stop", error=history.health.error, lost=history.health.pending
            )
        await asyncio.to_thread(history.close)

    def _bind(self, cap: int) -> CappedListener:
        host, port = self.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, reuse_port=False)
        sock.setblocking(False)
        return CappedListener.wrap(sock, cap)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: self.request_reload("sighup"))

    def _on_stop_signal(self, name: str) -> None:
        """The first SIGTERM/SIGINT stops cleanly; a second one exits at once (status 1)."""
        if not self._stop.is_set():
            self._stop.set()
            return
        log.warning("stopping_now", signal=name)
        os._exit(1)

    def request_reload(self, trigger: str) -> None:
        """Ask for a reload; requests that come in a burst are served by one."""
        self._reload_trigger = trigger
        self._reload_wanted.set()
        if self.tls is not None:
            self.tls.check(trigger)

    async def _reloader(self) -> None:
        """The one task that reloads: after a request, waits until no new request came and
        the file stayed the same for `RELOAD_SETTLE_SECONDS`, then reloads once."""
        while True:
            await self._reload_wanted.wait()
            while True:
                self._reload_wanted.clear()
                stamp = self._stamp()
                await asyncio.sleep(RELOAD_SETTLE_SECONDS)
                if not self._reload_wanted.is_set() and self._stamp() == stamp:
                    break
            self._file_stamp = self._stamp()
            await self.reload(self._reload_trigger)

    async def reload(self, trigger: str) -> bool:
        """Load the file again and build all it needs; swap it in only if all of that
        succeeded. Never raises: a failure is `reload_failed` with its reason."""
        old = self.state.registry
        try:
            registry, warnings = await asyncio.to_thread(check_registry, self.config_path)
            plan = await asyncio.to_thread(self.scheduler.prepare, old, registry)
        except RegistryInvalid as invalid:
            return self._reload_failed(trigger, [str(issue) for issue in invalid.issues])
        except Exception as exc:  # noqa: BLE001 - whatever it is, the last good registry stays
            return self._reload_failed(trigger, [f"{self.config_path}: {_describe(exc)}"])
        try:
            self.state.set_registry(registry)
            changes = self.scheduler.apply(plan)
        except Exception as exc:  # noqa: BLE001 - a bug here must not kill the reloader
            return self._reload_failed(trigger, [f"applying the registry: {_describe(exc)}"])
        self.state.record_reload(True)
        settle()  # the old registry goes, the new one is frozen out of full collections
        log.info("reloaded", trigger=trigger, **changes)
        _log_registry_warnings(warnings, trigger)
        return True

    def _reload_failed(self, trigger: str, errors: list[str]) -> bool:
        self.state.record_reload(False, errors)
        log.warning("reload_failed", trigger=trigger, errors=errors)
        return False

    def _stamp(self) -> tuple[object, ...]:
        # A directory registry changes when any of its files is added, removed or written.
        return registry_stamp(self.config_path)

    async def _watch_file(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            if self.tls is not None:
                self.tls.check("file_changed")
            stamp = self._stamp()
            if stamp != self._file_stamp:
                self._file_stamp = stamp
                self.request_reload("file_changed")


def _log_registry_warnings(warnings: list[ConfigIssue], trigger: str) -> None:
    """One `registry_warning` event per warning of the registry now in force (same contact
    on two channels, `replaced_by` on an active channel): they do not stop loading, so the
    log is where a maintainer sees them. `trigger`: "start", "sighup" or "file_changed"."""
    for issue in warnings:
        log.warning(
            "registry_warning",
            trigger=trigger,
            file=issue.file,
            line=issue.line,
            path=issue.path,
            message=issue.message,
        )


def _describe(exc: BaseException) -> str:
    """One line: the exception's type and message (an OSError's file and reason)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"{type(exc).__name__}:{where}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"[:500]
