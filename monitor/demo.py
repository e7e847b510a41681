"""`contact-monitor demo`: every state the monitor can show, at once, on loopback only.

It starts web servers on 127.0.0.1 (HTTPS with a certificate authority made on the spot
by `trustme`, so nothing is trusted beyond this process's registry), writes a registry
that points at them, and runs the daemon on it. Within 30 s the status page and the API
show: a channel up, one down with its reason, a slow one, a certificate about to expire,
a deprecated number still published in another format, an unregistered number, a
vanished contact, a channel in maintenance, and a phone number checked only against the
numbering plan ("number valid · not dialled").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme  # the demo's dependency (extra "demo"), not the daemon's
import yaml

from monitor.config import PhoneChannel

__all__ = ["DEMO_STATES", "DemoSite", "demo_registry", "run_demo"]

ORG = "demo"
SLOW_SECONDS = 1.2  # the slow page's delay; its channel allows 0.5 s
# What the demo shows: state -> the channel (or finding) that shows it.
DEMO_STATES = {
    "up": "shop-site",
    "down": "returns-form",
    "slow": "chat",
    "certificate expiring": "partner-portal",
    "deprecated number published": "old-hotline",
    "unregistered number": "+74951204567",
    "vanished contact": "sellers-hotline",
    "maintenance": "travel-site",
    "number valid, not dialled": "shop-hotline",
}
CONTACTS_PAGE = """<!doctype html><html lang="ru"><head><meta charset="utf-8">
<title>Контакты — Example Shop</title></head><body>
<h1>Контакты</h1>
<p>Покупателям: <a href="tel:+74952321000">+7 495 232-10-00</a></p>
<p>Старый бесплатный номер: +7 800 234 70 00</p>
<p>Пресс-служба: +7 (495) 120-45-67</p>
</body></html>
"""
SHOP_PAGE = "<!doctype html><html><body><h1>Example Shop</h1><p>Сообщения</p></body></html>"


@dataclass(frozen=True)
class _Route:
    status: int
    body: str
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?")[0], _Route(404, "not found"))
        if route.delay:
            time.sleep(route.delay)
        data = route.body.encode()
        self.send_response(route.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the daemon's own log is what the demo shows


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, _Route], tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe that hangs up early is no news

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


class DemoSite:
    """Two HTTPS servers on loopback with a CA of their own: one with a certificate good
    for a year, one whose certificate expires in 5 days. Use as a context manager."""

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="contact-monitor demo CA")
        now = datetime.datetime.now(datetime.UTC)
        year = self.ca.issue_cert("127.0.0.1", not_after=now + datetime.timedelta(days=365))
        soon = self.ca.issue_cert("127.0.0.1", not_after=now + datetime.timedelta(days=5))
        self.main = _Server(
            {
                "/": _Route(200, SHOP_PAGE),
                "/returns": _Route(503, "<p>Service Unavailable</p>"),
                "/chat": _Route(200, SHOP_PAGE, delay=SLOW_SECONDS),
                "/travel": _Route(502, "<p>Bad Gateway: planned works</p>"),
                "/contacts": _Route(200, CONTACTS_PAGE),
            },
            _server_tls(year),
        )
        self.expiring = _Server({"/": _Route(200, SHOP_PAGE)}, _server_tls(soon))
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> DemoSite:
        for server in (self.main, self.expiring):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.main, self.expiring):
            server.shutdown()
            server.server_close()

    def write_ca(self, path: Path) -> None:
        self.ca.cert_pem.write_to_path(str(path))


def _server_tls(cert: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def demo_registry(site: DemoSite, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The demo's registry as data: every channel pointing at `site`."""
    now = now or datetime.datetime.now(datetime.UTC)
    main, expiring = site.main.url, site.expiring.url
    phone_check = {"check": "numbering"} if "check" in PhoneChannel.model_fields else {}
    maintenance = {
        "start": (now - datetime.timedelta(hours=1)).isoformat(timespec="seconds"),
        "end": (now + datetime.timedelta(hours=2)).isoformat(timespec="seconds"),
    }
    channels: list[dict[str, Any]] = [
        {"id": "shop-site", "name": "Shop web site", "kind": "web", "service": "shop"}
        | {"url": f"{main}/", "expect": {"body_regex": "Сообщения"}},
        {"id": "returns-form", "name": "Returns form", "kind": "web", "service": "shop"}
        | {"url": f"{main}/returns"},
        {"id": "chat", "name": "Support chat", "kind": "chat", "service": "shop"}
        | {"url": f"{main}/chat", "expect": {"max_latency": "0.5s"}},
        {"id": "partner-portal", "name": "Partner portal", "kind": "web", "service": "partners"}
        | {"url": f"{expiring}/", "expect": {"cert_min_days": 14}},
        {"id": "travel-site", "name": "Travel (planned works)", "kind": "web"}
        | {"service": "travel", "url": f"{main}/travel", "maintenance": [maintenance]},
        {"id": "shop-hotline", "name": "Shop line", "kind": "phone", "service": "shop"}
        | {"phone": "+7 (495) 232-10-00", "published_on": ["contacts"], **phone_check},
        {"id": "sellers-hotline", "name": "Sellers' line", "kind": "phone"}
        | {"service": "sellers", "phone": "8 800 600-74-15", "published_on": ["contacts"]},
        {"id": "old-hotline", "name": "Old free line (switched off)", "kind": "phone"}
        | {"service": "shop", "phone": "8 (800) 234-70-00", "status": "deprecated"}
        | {"deprecated_since": "2023-01-01", "replaced_by": "chat"},
    ]
    return {
        "version": 1,
        "defaults": {
            "interval": "5s",
            "source_interval": "5s",
            "timeout": "3s",
            "failure_threshold": 1,
            "timezone": "Europe/Moscow",
            "tls": {"ca_file": "ca.pem"},
            "history": {"path": "history.sqlite3"},
        },
        "organizations": [
            {
                "id": ORG,
                "name": "Example Shop (demo)",
                "sources": [{"id": "contacts", "url": f"{main}/contacts", "name": "Contacts"}],
                "channels": channels,
            }
        ],
    }


def write_demo(site: DemoSite, folder: Path) -> Path:
    """Writes the CA and the registry into `folder`; returns the registry's path."""
    folder.mkdir(parents=True, exist_ok=True)
    site.write_ca(folder / "ca.pem")
    path = folder / "channels.yaml"
    header = "# Generated by `contact-monitor demo`: loopback servers, made-up contacts.\n"
    path.write_text(header + yaml.safe_dump(demo_registry(site), allow_unicode=True))
    return path


@contextlib.contextmanager
def _folder(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    made = Path(tempfile.mkdtemp(prefix="contact-monitor-demo-"))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def run_demo(listen: tuple[str, int], folder: Path | None = None) -> int:
    """Start the demo's servers, write its registry, and run the daemon on it until
    SIGTERM/SIGINT. Returns the daemon's exit status."""
    from monitor.daemon import Daemon  # the daemon pulls in the web stack; load it late

    with DemoSite() as site, _folder(folder) as where:
        config = write_demo(site, where)
        host, port = listen
        print(
            f"contact-monitor demo: pages at {site.main.url} and {site.expiring.url}, "
            f"registry {config}\nstatus page http://{host}:{port}/ (every state within 30 s; "
            "Ctrl-C stops)",
            flush=True,
        )
        return asyncio.run(Daemon(config, listen).run())
