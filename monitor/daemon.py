"""`contact-monitor run`: the registry, the scheduler and the web server on one event loop,
with hot reload (SIGHUP or a change of the file) and a clean shutdown (SIGTERM/SIGINT)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import structlog
import uvicorn

from monitor.loader import RegistryInvalid, load_registry
from monitor.metrics import MonitorMetrics
from monitor.scheduler import ProbeScheduler
from monitor.state import State
from monitor.web import create_app

__all__ = ["Daemon", "parse_listen"]

log = structlog.get_logger("monitor.daemon")
WATCH_INTERVAL_SECONDS = 2.0


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
    def __init__(self, config_path: Path, listen: tuple[str, int]) -> None:
        self.config_path = config_path
        self.listen = listen
        self._stop = asyncio.Event()
        self._file_stamp = self._stamp()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; a bad registry at start raises `RegistryInvalid`."""
        registry = load_registry(self.config_path)
        self.state = State(registry)
        self.state.record_reload(True)
        self.metrics = MonitorMetrics(self.state)
        self.scheduler = ProbeScheduler(self.state, self.metrics, self.config_path.resolve().parent)
        sock = self._bind()
        server = _Server(
            uvicorn.Config(
                create_app(self.state, self.metrics),
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        self._install_signals()
        self.scheduler.start()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        watching = asyncio.create_task(self._watch_file())
        log.info(
            "started",
            listen=f"{self.listen[0]}:{sock.getsockname()[1]}",
            config=str(self.config_path),
            channels=len(self.state.channel_defs),
            sources=len(self.state.source_defs),
            pid=os.getpid(),
        )
        await self._stop.wait()
        log.info("stopping")
        watching.cancel()
        await self.scheduler.shutdown()
        server.should_exit = True
        await serving
        log.info("stopped")
        return 0

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
