"""The web side's share of the process's resources: a listening socket that never holds
more client connections than a cap kept below the open-files limit (room is left for the
probes), and an HTTP protocol that drops clients that are idle or send a request too slowly.

A monitor whose own endpoints can take every file descriptor would report healthy channels
down (`EMFILE` on the probes' connect): the web side gives way first.
"""

from __future__ import annotations

import asyncio
import resource
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["CappedListener", "TimedH11Protocol", "connection_cap"]

BASE_DESCRIPTORS = 64  # the process's own: stdio, epoll, SQLite and its WAL, the listener...
DESCRIPTORS_PER_PROBE = 4  # a probe's socket(s) while Happy Eyeballs races, and its DNS query
REQUEST_HEAD_TIMEOUT_SECONDS = 10.0  # a request line and headers must arrive within this
WRITE_STALL_TIMEOUT_SECONDS = 20.0  # a client that reads nothing of its answer this long goes


def connection_cap(concurrency: int, nofile: int | None = None) -> int:
    """Client connections the web side may hold: the soft `RLIMIT_NOFILE` less room for
    `concurrency` probes and the process's own files; at least 8, at most 1024."""
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if nofile == resource.RLIM_INFINITY:
            nofile = 1 << 20
    room = BASE_DESCRIPTORS + DESCRIPTORS_PER_PROBE * concurrency
    return max(8, min(1024, nofile - room))


class CappedListener(socket.socket):
    """A listening socket whose `accept` (called by asyncio's accept loop) closes at once
    what comes in beyond `cap` open client connections, so they cost a descriptor only
    for an instant. `rejected` counts them."""

    cap: int = 1024
    rejected: int = 0

    @classmethod
    def wrap(cls, sock: socket.socket, cap: int) -> CappedListener:
        listener = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        listener.cap = cap
        listener.rejected = 0
        listener._clients: list[socket.socket] = []
        return listener

    @property
    def open_clients(self) -> int:
        self._clients = [c for c in self._clients if c.fileno() != -1]
        return len(self._clients)

    def accept(self) -> tuple[socket.socket, Any]:
        while True:  # BlockingIOError from the kernel's empty queue ends asyncio's loop
            conn, address = super().accept()
            if self.open_clients < self.cap:
                self._clients.append(conn)
                return conn, address
            conn.close()
            self.rejected += 1


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's line and headers: a
    client that connects and says nothing, or trickles its headers, is closed after
    `REQUEST_HEAD_TIMEOUT_SECONDS` (uvicorn itself times out only idle keep-alive); and a
    client that stops reading its answer (the send buffer stays full) is cut off after
    `WRITE_STALL_TIMEOUT_SECONDS`."""

    _head_timer: asyncio.TimerHandle | None = None
    _stall_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.resume_writing_timer_cancel()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(
                WRITE_STALL_TIMEOUT_SECONDS, self.transport.abort
            )

    def resume_writing(self) -> None:
        self.resume_writing_timer_cancel()
        super().resume_writing()

    def resume_writing_timer_cancel(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self._head_timer = self.loop.call_later(
                REQUEST_HEAD_TIMEOUT_SECONDS, self._head_timed_out
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        in_request = self.cycle is not None and not self.cycle.response_complete
        if not in_request:
            self.transport.close()
