"""Misbehaving peers for the hardening tests: each is a function a RawTcpServer runs for
every connection. They stop by themselves (bounded loops) and only talk on loopback."""

from __future__ import annotations

import functools
import socket
import struct
import time
import zlib

MAX_SECONDS = 30  # no peer keeps a connection longer than this


def _read_request(conn: socket.socket) -> None:
    conn.settimeout(5)
    conn.recv(65536)


def _trickle(conn: socket.socket, head: bytes, byte: bytes) -> None:
    """After the request: `head`, then `byte` once a second."""
    _read_request(conn)
    conn.sendall(head)
    for _ in range(MAX_SECONDS):
        conn.sendall(byte)
        time.sleep(1)


def slow_headers(conn: socket.socket) -> None:
    """A status line, then one header byte per second."""
    _trickle(conn, b"HTTP/1.1 200 OK\r\n", b"X")


def slow_body(conn: socket.socket) -> None:
    """Headers promising 100 kB, then one body byte per second."""
    _trickle(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x")


def endless_body(conn: socket.socket) -> None:
    """A body without length that never ends (until the client hangs up, or 1 GB)."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
    chunk = b"<p>8 800 555-89-82</p>" * 3000
    for _ in range(1024**3 // len(chunk)):
        conn.sendall(chunk)


@functools.cache
def gzip_bomb_body() -> bytes:
    """1 GiB of zeros, gzip-compressed to about 1 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join([*(compressor.compress(zeros) for _ in range(1024)), compressor.flush()])


def gzip_bomb(conn: socket.socket) -> None:
    body = gzip_bomb_body()
    _read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/html\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    conn.sendall(body)


def long_header(size: int) -> object:
    """A header line of `size` bytes."""

    def send_long_header(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * size + b"\r\nContent-Length: 2\r\n\r\nok"
        )

    return send_long_header


def reset(conn: socket.socket) -> None:
    """Reads the request, then resets the connection."""
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def garbage(conn: socket.socket) -> None:
    """Answers with bytes that are not HTTP."""
    _read_request(conn)
    conn.sendall(bytes(range(256)) * 8 + b"\r\n\r\n")


def smtp_banner_after(seconds: float) -> object:
    def late_banner(conn: socket.socket) -> None:
        time.sleep(seconds)
        conn.sendall(b"220 mx.mail.test ESMTP late\r\n")
        time.sleep(1)

    return late_banner


def smtp_broken_starttls(conn: socket.socket) -> None:
    """Offers STARTTLS, says go ahead, then sends junk instead of a TLS handshake."""
    conn.settimeout(5)
    conn.sendall(b"220 mx.mail.test ESMTP\r\n")
    reader = conn.makefile("rb")
    for _ in range(10):
        line = reader.readline(1024).upper()
        if not line:
            return
        if line.startswith((b"EHLO", b"HELO")):
            conn.sendall(b"250-mx.mail.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        elif line.startswith(b"STARTTLS"):
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            conn.sendall(b"this is not a TLS server hello\r\n" * 10)
            time.sleep(1)
            return
        else:
            conn.sendall(b"250 OK\r\n")
