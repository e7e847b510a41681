"""The first bytes a server sent on a probe's connection, kept for the failure's message.

httpcore words every answer it could not read a status line from as "Server disconnected
without sending a response", whether the server sent nothing or sent a banner, an HTML page
without a head (HTTP/0.9) or half a status line. The probe's network backend wraps each
stream and keeps the first `KEPT_BYTES` read on it (after TLS, so they are the server's
plain text), so the reason can say which of these happened.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import httpcore

__all__ = ["KEPT_BYTES", "RecordingBackend", "first_bytes", "recording"]

KEPT_BYTES = 64
# The bytes of the current hop (task-local: each probe runs in its own task).
_RECEIVED: ContextVar[bytearray | None] = ContextVar("received", default=None)


def recording() -> bytearray:
    """Starts keeping the first bytes of the current task's connections; returns the buffer
    they go to (at most `KEPT_BYTES`)."""
    buffer = bytearray()
    _RECEIVED.set(buffer)
    return buffer


def first_bytes() -> bytes:
    """What the current task's connection has received so far (at most `KEPT_BYTES`)."""
    return bytes(_RECEIVED.get() or b"")


class _RecordingStream(httpcore.AsyncNetworkStream):
    """A network stream that copies the first bytes it reads into the task's buffer."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore's signature
        data = await self._stream.read(max_bytes, timeout)
        buffer = _RECEIVED.get()
        if buffer is not None and len(buffer) < KEPT_BYTES:
            buffer += data[: KEPT_BYTES - len(buffer)]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
    ) -> httpcore.AsyncNetworkStream:
        # A proxy's CONNECT answer came before: what counts is what the server says next.
        buffer = _RECEIVED.get()
        if buffer is not None:
            buffer.clear()
        return _RecordingStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """`backend` (httpcore's own, or `ResolvingBackend`) with every stream recorded."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _RecordingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _RecordingStream(
            await self._backend.connect_unix_socket(path, timeout, socket_options)
        )

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
