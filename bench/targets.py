"""Loopback targets for the benchmark: nginx (HTTP and HTTPS), dnsmasq (MX records), and
an SMTP banner server; each a process whose CPU time the benchmark reads as the floor."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

MAIL_DOMAIN = "bench.test"
MX_HOST = "mx.bench.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (and their reaped children) so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / 100.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


@dataclass
class Targets:
    http_port: int
    https_port: int
    dns_port: int
    smtp_port: int
    ca_file: Path
    pids: dict[str, list[int]]  # kind -> processes serving it

    def cpu(self, kind: str) -> float:
        return cpu_seconds(self.pids[kind])


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
    fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
    keepalive_timeout 0;
    default_type text/html;
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {work}/server.pem;
        ssl_certificate_key {work}/server.key;
        location / {{ return 200 "<html><body><h1>Сообщения</h1><p>8 800 555-89-82</p>"; }}

    }}
}}
"""

SMTP_SERVER = r"""
import asyncio, sys
async def session(reader, writer):
    writer.write(b"220 mx.bench.test ESMTP bench\r\n")
    try:
        while line := await asyncio.wait_for(reader.readline(), 30):
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-mx.bench.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n"); await writer.drain(); break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (asyncio.TimeoutError, ConnectionError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(session, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def _wait_port(port: int, proto: int = socket.SOCK_STREAM, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, proto) as sock:
            try:
                sock.settimeout(0.2)
                sock.connect(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def running_targets(work: Path) -> Iterator[Targets]:
    for tool in ("nginx", "dnsmasq"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} missing: run `make bench`, which installs it")
    work.mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(work / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(work / "server.pem"))
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    http_port, https_port, dns_port, smtp_port = (free_port() for _ in range(4))
    (work / "nginx.conf").write_text(
        NGINX_CONF.format(work=work, http_port=http_port, https_port=https_port)
    )
    processes = [
        subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)]),
        subprocess.Popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                f"--port={dns_port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                f"--mx-host={MAIL_DOMAIN},{MX_HOST},10",
                f"--host-record={MX_HOST},127.0.0.1",
                "--cache-size=0",
                f"--pid-file={work / 'dnsmasq.pid'}",
                "--user=root",
            ]
        ),
        subprocess.Popen([sys.executable, "-c", SMTP_SERVER, str(smtp_port)]),
    ]
    try:
        _wait_port(http_port)
        _wait_port(https_port)
        _wait_port(smtp_port)
        time.sleep(0.5)
        nginx_workers = children(processes[0].pid)
        yield Targets(
            http_port,
            https_port,
            dns_port,
            smtp_port,
            work / "ca.pem",
            {
                "http": [processes[0].pid, *nginx_workers],
                "https": [processes[0].pid, *nginx_workers],
                "mx": [processes[1].pid],
                "smtp": [processes[2].pid],
            },
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
