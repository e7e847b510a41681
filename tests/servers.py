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

from dnslib import MX, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSError, DNSLogger, DNSServer

__all__ = ["DnsZone", "HttpServer", "RawTcpServer", "free_port", "running_dns"]


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


class _Handler(BaseHTTPRequestHandler):
    server: _RoutingServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
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

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"


# --- raw TCP ------------------------------------------------------------------------


class RawTcpServer:
    """Accepts connections on 127.0.0.1 and hands each socket to `on_connect` in a thread."""

    def __init__(self, on_connect: Callable[[socket.socket], None]) -> None:
        self._on_connect = on_connect
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]

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
        elif name not in self.zone.mx and name not in self.zone.a:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype == "MX":
            for preference, exchange in self.zone.mx.get(name, []):
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(exchange, preference), ttl=60))
                for address in self.zone.a.get(exchange, []) if name in self.zone.glue else []:
                    reply.add_ar(RR(exchange, QTYPE.A, rdata=A(address), ttl=60))
        elif qtype == "A":
            for address in self.zone.a.get(name, []):
                reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=60))
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
