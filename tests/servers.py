"""Real servers on loopback for the integration tests: HTTP(S), DNS, raw TCP.

Each runs in a thread of its own so the code under test talks to it over real sockets,
exactly as it would to a remote peer.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSError, DNSLogger, DNSServer

__all__ = [
    "DnsZone",
    "ForwardProxy",
    "HttpServer",
    "RawTcpServer",
    "free_port",
    "raw_headers",
    "running_dns",
]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- HTTP ---------------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler], None]


def page(
    body: bytes | str,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> Route:
    """A route answering with a fixed response."""
    data = body.encode() if isinstance(body, str) else body

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    return page(b"", status, headers={"Location": location})


def raw_headers(status: int, headers: list[tuple[str, bytes]], body: bytes = b"") -> Route:
    """A route sending header values byte for byte (repeated names, raw UTF-8)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in [*headers, ("Content-Length", str(len(body)).encode())]:
            handler.send_header(name, value.decode("latin-1"))  # latin-1 round-trips bytes
        handler.end_headers()
        handler.wfile.write(body)

    return route


class _Handler(BaseHTTPRequestHandler):
    server: _RoutingServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.server.received.append((self.path, dict(self.headers.items())))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            page("not found", 404)(self)
        else:
            route(self)

    def log_message(self, *args: object) -> None:
        pass


class _RoutingServer(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    requests: list[str]
    received: list[tuple[str, dict[str, str]]]  # (path, request headers) per request

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up or reject our certificate are what the tests are about


@dataclass
class HttpServer:
    """An HTTP or HTTPS server on loopback serving `routes` (path -> route)."""

    routes: dict[str, Route] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    bind: str = "127.0.0.1"

    def __enter__(self) -> HttpServer:
        self._server = _RoutingServer((self.bind, 0), _Handler)
        self._server.routes = self.routes
        self._server.requests = []
        self._server.received = []
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    @property
    def received(self) -> list[tuple[str, dict[str, str]]]:
        return self._server.received

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"


# --- forward proxy ------------------------------------------------------------------


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1, run on an event loop in a thread of its own:
    CONNECT tunnels (HTTPS) and absolute-form requests (plain HTTP), as squid serves them.
    With `credentials` ("user:password") it answers 407 to requests without them."""

    def __init__(self, credentials: str | None = None) -> None:
        self.credentials = credentials
        self.requests: list[str] = []  # request lines seen, e.g. "CONNECT 127.0.0.1:443 HTTP/1.1"
        self._ready = threading.Event()

    def __enter__(self) -> ForwardProxy:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        import asyncio

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await self._stop.wait()

        asyncio.run(main())

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio
        import base64
        from urllib.parse import urlsplit

        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *header_lines = head.split("\r\n")
            self.requests.append(line)
            method, target, _ = line.split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (h.partition(":") for h in header_lines if ":" in h)
            }
            if self.credentials:
                wanted = "Basic " + base64.b64encode(self.credentials.encode()).decode()
                if headers.get("proxy-authorization") != wanted:
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                        b"Connection: close\r\n\r\n"
                    )
                    await writer.drain()
                    return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection(
                    parts.hostname, parts.port or 80
                )
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                kept = [
                    h
                    for h in header_lines
                    if h and not h.lower().startswith(("proxy-", "connection:"))
                ]
                request = [f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]
                up_writer.write("\r\n".join(request).encode("latin-1"))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _pipe(reader: Any, writer: Any) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:
                writer.close()


# --- raw TCP ------------------------------------------------------------------------


class RawTcpServer:
    """Accepts connections on 127.0.0.1 and hands each socket to `on_connect` in a thread."""

    def __init__(self, on_connect: Callable[[socket.socket], None]) -> None:
        self._on_connect = on_connect
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.connections = 0  # accepted so far: a test can wait for a probe to be in flight

    def __enter__(self) -> RawTcpServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        self.connections += 1
        with conn, contextlib.suppress(OSError):
            self._on_connect(conn)

    def hold(self, conn: socket.socket, seconds: float = 30.0) -> None:
        """Keep a connection open and silent until the server stops (a tarpit)."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)


# --- DNS ----------------------------------------------------------------------------


@dataclass
class DnsZone:
    """Answers by name: MX and A records, and names that fail or stay silent."""

    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    a: dict[str, list[str]] = field(default_factory=dict)
    aaaa: dict[str, list[str]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)  # over UDP: TC bit, no answer
    glue: set[str] = field(default_factory=set)  # MX answers that carry the hosts' A records
    queries: list[tuple[str, str]] = field(default_factory=list)  # (name, type) as asked


class _ZoneResolver(BaseResolver):
    def __init__(self, zone: DnsZone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.zone.queries.append((name, qtype))
        reply = request.reply()
        if name in self.zone.silent:
            raise DNSError("silent")  # dnslib sends nothing back
        if name in self.zone.truncated and getattr(handler, "protocol", "") == "udp":
            reply.header.tc = 1  # "ask again over TCP"
            return reply

        if name in self.zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
        elif name not in self.zone.mx and name not in self.zone.a and name not in self.zone.aaaa:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype == "MX":
            for preference, exchange in self.zone.mx.get(name, []):
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(exchange, preference), ttl=60))
                for address in self.zone.a.get(exchange, []) if name in self.zone.glue else []:
                    reply.add_ar(RR(exchange, QTYPE.A, rdata=A(address), ttl=60))
        elif qtype == "A":
            for address in self.zone.a.get(name, []):
                reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=60))
        elif qtype == "AAAA":
            for address in self.zone.aaaa.get(name, []):
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(address), ttl=60))
        return reply


def _bind_udp_and_tcp(resolver: BaseResolver, logger: DNSLogger) -> list[DNSServer]:
    """UDP and TCP servers on one free port; another port if TCP's twin is taken."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        servers: list[DNSServer] = []
        try:
            for tcp in (False, True):
                servers.append(
                    DNSServer(resolver, port=port, address="127.0.0.1", tcp=tcp, logger=logger)
                )
        except OSError:
            for server in servers:
                server.server.server_close()
            continue
        return servers
    raise RuntimeError("no free port for both UDP and TCP")


@contextlib.contextmanager
def running_dns(zone: DnsZone) -> Iterator[int]:
    """A DNS server for `zone` on 127.0.0.1, over UDP and TCP on one port; yields the port."""
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = _bind_udp_and_tcp(_ZoneResolver(zone), logger)
    port = servers[0].server.server_address[1]
    for server in servers:  # a short poll interval makes shutdown quick
        threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield port
    finally:
        for server in servers:
            server.server.shutdown()
            server.server.server_close()
