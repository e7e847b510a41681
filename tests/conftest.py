"""Fixtures: a test CA, loopback HTTP(S), DNS, SMTP and raw TCP servers, and registries."""

from __future__ import annotations

import datetime
import errno
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))

from servers import DnsZone, HttpServer, RawTcpServer, free_port, running_dns
from sip_network import FAR_ENDS, SipNetwork

from monitor.config import Defaults, Registry
from monitor.probers import ProbeContext, probe_context

MAIL_DOMAIN = "mail.test"
MAIL_HOST = "mx.mail.test"


def _off_loopback(address: object) -> str | None:
    """The host of a connect() target that is not on this machine's loopback, or None."""
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return None  # a Unix socket path, or something the socket itself will refuse
    host = address[0].split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None if host == "localhost" else host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return None if ip.is_loopback else host


@pytest.fixture(autouse=True)
def stay_on_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every test talks only to 127.0.0.0/8 and ::1: a connect() anywhere else (a redirect
    followed into 169.254.169.254, say) is refused before a packet leaves, and fails the
    test. Covers this process's sockets, asyncio's included; child processes (SIPp,
    Chromium) are kept on loopback by their own configuration."""
    attempts: list[str] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address: object) -> None:
        host = _off_loopback(address)
        if host is not None:
            attempts.append(host)
            raise OSError(errno.ENETUNREACH, f"test guard: {host} is off loopback")

    def guarded_connect(self: socket.socket, address: Any) -> None:
        guard(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield attempts
    assert attempts == [], f"the test tried to leave loopback: {attempts}"


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_localhost(ca: trustme.CA) -> ssl.SSLContext:
    return server_context(ca.issue_cert("127.0.0.1", "localhost"))


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    with HttpServer() as server:
        yield server


@pytest.fixture
def https_server(tls_localhost: ssl.SSLContext) -> Iterator[HttpServer]:
    with HttpServer(tls=tls_localhost) as server:
        yield server


@pytest.fixture
def expired_https_server(ca: trustme.CA) -> Iterator[HttpServer]:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    cert = ca.issue_cert("127.0.0.1", not_before=past - datetime.timedelta(days=60), not_after=past)
    with HttpServer(tls=server_context(cert)) as server:
        yield server


@pytest.fixture
def soon_expiring_https_server(ca: trustme.CA) -> Iterator[HttpServer]:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    with HttpServer(tls=server_context(ca.issue_cert("127.0.0.1", not_after=soon))) as server:
        yield server


@pytest.fixture
def wrong_host_https_server(ca: trustme.CA) -> Iterator[HttpServer]:
    with HttpServer(tls=server_context(ca.issue_cert("wrong.test"))) as server:
        yield server


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[..., None]], RawTcpServer]]:
    """Factory: a TCP server whose every connection runs the given function."""
    started: list[RawTcpServer] = []

    def start(on_connect: Callable[..., None]) -> RawTcpServer:
        server = RawTcpServer(on_connect).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture
def silent_server(raw_server: Any) -> RawTcpServer:
    """Accepts connections and never says a word."""
    holder: list[RawTcpServer] = []
    server = raw_server(lambda conn: holder[0].hold(conn))
    holder.append(server)
    return server


@pytest.fixture(scope="session")
def sip_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipNetwork]:
    """Kamailio as a SIP trunk with digest auth, and one SIPp far end per FAR_ENDS case."""
    network = SipNetwork(tmp_path_factory.mktemp("sip")).start(list(FAR_ENDS.values()))
    yield network
    network.stop()


@pytest.fixture(scope="module")
def sip_tls_network(
    ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SipNetwork]:
    """Kamailio as a SIP trunk over UDP, TCP and TLS (certificate for 127.0.0.1 and ::1 only,
    from the session's trustme CA), with far ends that ring, answer and answer 404."""
    cert = ca.issue_cert("127.0.0.1", "::1")
    network = SipNetwork(tmp_path_factory.mktemp("sip-tls"), tls_cert=cert)
    network.start([FAR_ENDS[case] for case in ("rings", "answers", "not-found")])
    yield network
    network.stop()


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def dns_zone() -> DnsZone:
    """A zone with a working mail domain and one of each kind of broken one."""
    return DnsZone(
        mx={
            MAIL_DOMAIN: [(10, MAIL_HOST), (20, "backup.mail.test")],
            "nullmx.test": [(0, ".")],
            "noaddress.test": [(10, "ghost.noaddress.test")],
            "nomx.test": [],  # but an A record: its own mail host (RFC 5321 §5.1)
            "nomail.test": [],  # and no address either
            "big.test": [(10, MAIL_HOST)],
            "glue.test": [(10, MAIL_HOST)],
            "fallback.test": [(10, "dead.mail.test"), (20, MAIL_HOST)],
            "v6only.test": [(10, "v6.mail.test")],
            "dual.test": [(10, "dual.mail.test")],
            "xn--e1afmkfd.test": [(10, MAIL_HOST)],  # пример.test
        },
        aaaa={"v6.mail.test": ["::1"], "dual.mail.test": ["::1"]},
        a={
            "dead.mail.test": ["127.0.0.2"],  # nothing listens there: connection refused
            "dual.mail.test": ["127.0.0.1"],
            MAIL_HOST: ["127.0.0.1"],
            "backup.mail.test": ["127.0.0.1"],
            "nomx.test": ["127.0.0.1"],
            "noaddress.test": [],
        },
        servfail={"servfail.test"},
        silent={"silent.test"},
        truncated={"big.test"},
        glue={"glue.test"},
    )


@pytest.fixture
def dns_port(dns_zone: DnsZone) -> Iterator[int]:
    with running_dns(dns_zone) as port:
        yield port


class _AcceptAll:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "250 OK"


@pytest.fixture
def smtp_server(ca: trustme.CA) -> Iterator[int]:
    """aiosmtpd on 127.0.0.1 offering STARTTLS with a certificate for the MX host name."""
    port = free_port()
    controller = Controller(
        _AcceptAll(),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(ca.issue_cert(MAIL_HOST)),
        server_hostname=MAIL_HOST,
    )
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def smtp_server_without_tls() -> Iterator[int]:
    port = free_port()
    controller = Controller(_AcceptAll(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def registry_with(
    channels: list[dict[str, Any]], sources: list[dict[str, Any]] | None = None, **defaults: Any
) -> Registry:
    """A one-organisation registry (org `acme`) with these channels, sources and defaults."""
    return Registry.model_validate(
        {
            "version": 1,
            "defaults": {"timeout": "2s", **defaults},
            "organizations": [{"id": "acme", "channels": channels, "sources": sources or []}],
        }
    )


@pytest.fixture
def defaults(dns_port: int, ca_file: Path) -> Defaults:
    """Defaults pointing at the loopback DNS server and trusting the test CA."""
    return Defaults.model_validate(
        {
            "timeout": "2s",
            "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port},
            "tls": {"ca_file": str(ca_file)},
        }
    )


@pytest.fixture
async def ctx(defaults: Defaults) -> AsyncIterator[ProbeContext]:
    async with probe_context(defaults, Path("/")) as context:
        yield context


class RunningDaemon:
    """`contact-monitor run` in a subprocess on a free loopback port."""

    def __init__(
        self,
        config: Path,
        log_path: Path,
        extra_args: Sequence[str] = (),
        scheme: str = "http",
        **client: Any,
    ) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.client = client  # httpx options for talking to it: verify, auth
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "run",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "debug",
                *extra_args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self._answers("/healthz"), what="daemon /healthz", timeout=20)

    def _answers(self, path: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited {self.proc.returncode}: {self.logs()}")
        try:
            return httpx.get(self.url + path, timeout=2, **self.client).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5, **self.client)

    def metrics_text(self) -> str:
        return self.get("/metrics").text

    def samples(self, name: str, text: str | None = None) -> list[Any]:
        """Every sample of metric `name` (full sample name) in `text`, or a fresh scrape."""
        text = self.metrics_text() if text is None else text
        return [
            s
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        ]

    def value(self, name: str, text: str | None = None, **labels: str) -> float | None:
        for sample in self.samples(name, text):
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[[Path], RunningDaemon]]:
    """Factory: start the daemon on a registry file; stopped at teardown."""
    started: list[RunningDaemon] = []

    def start(config: Path, **options: Any) -> RunningDaemon:
        daemon = RunningDaemon(config, tmp_path / f"daemon-{len(started)}.log", **options)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


class ServiceProcess:
    """A real server program (Prometheus, Alertmanager) on a loopback port, logs to a file."""

    def __init__(self, args: list[str], port: int, log_path: Path, ready_path: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._ready(ready_path), f"{args[0]} ready", timeout=30)

    def _ready(self, path: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"exited {self.proc.returncode}: {self.log_path.read_text()}")
        try:
            return httpx.get(self.url + path, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[Callable[[Path], ServiceProcess]]:
    """Factory: Debian's prometheus-alertmanager with a config file, clustering off."""
    started: list[ServiceProcess] = []

    def start(config: Path) -> ServiceProcess:
        port = free_port()
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary, "alertmanager missing: `make test` installs prometheus-alertmanager"
        process = ServiceProcess(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            port,
            tmp_path / "alertmanager.log",
            "/-/ready",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[Path], ServiceProcess]]:
    """Factory: Debian's prometheus with a config file and a scratch TSDB."""
    started: list[ServiceProcess] = []

    def start(config: Path) -> ServiceProcess:
        port = free_port()
        binary = shutil.which("prometheus")
        assert binary, "prometheus missing: `make test` installs Debian's prometheus"
        process = ServiceProcess(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            port,
            tmp_path / "prometheus.log",
            "/-/ready",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


HARDENING_REPORT = Path(__file__).parent.parent / "build" / "hardening.md"


@pytest.fixture(scope="session")
def hardening_report() -> Iterator[list[dict[str, Any]]]:
    """Rows the hostile tests record; written to build/hardening.md when the session ends
    (docs/hardening.md is a copy of one run)."""
    rows: list[dict[str, Any]] = []
    yield rows
    if not rows:
        return
    lines = [
        "| area | case | expected | observed | time (s) | bytes read |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["area"], r["case"])):
        lines.append(
            "| {area} | {case} | {expected} | {observed} | {seconds} | {bytes} |".format(
                **{**row, "bytes": row.get("bytes", "–")}
            )
        )
    HARDENING_REPORT.parent.mkdir(exist_ok=True)
    HARDENING_REPORT.write_text("\n".join(lines) + "\n")
