"""Runs SIPp for one call or OPTIONS: scenario and trace in a private temporary folder,
one process per call, killed at the deadline, its output bounded.

Cost is bounded by the caller's semaphore (`defaults.sip.max_concurrent_calls`): one SIPp
process per call in flight, each a few MB (README, "SIP test calls").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from monitor.model import ProbeFailure
from monitor.sip.tls_relay import tls_relay
from monitor.sip.trace import TracedMessage, parse_trace

__all__ = ["SIPP", "Trunk", "local_address_for", "parse_trunk", "run_sipp"]

SIPP = "sipp"
MAX_TRACE_BYTES = 1024 * 1024  # a hostile trunk cannot make us read more
_TRANSPORT_FLAGS = {"udp": "u1", "tcp": "t1", "tls": "l1"}


@dataclass(frozen=True)
class Trunk:
    """`sip:HOST[:PORT][;transport=udp|tcp|tls]` (or `sips:`) taken apart."""

    host: str
    port: int
    transport: str  # udp | tcp | tls
    scheme: str = "sip"  # sips: every hop TLS (RFC 3261 §19.1), our URIs then say sips too

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_trunk(uri: str) -> Trunk:
    """The trunk's host, port (5060, or 5061 for sips:/TLS) and transport (RFC 3261 §19.1)."""
    scheme, _, rest = uri.partition(":")
    hostport, *params = rest.split(";")
    options = dict(p.partition("=")[::2] for p in params)
    transport = options.get("transport", "tls" if scheme == "sips" else "udp").lower()
    hostport = hostport.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = hostport.partition(":")
    default_port = 5061 if transport == "tls" else 5060
    port = int(port_text) if port_text.isdigit() else default_port
    return Trunk(unquote(host), port, transport, "sips" if scheme == "sips" else "sip")


def local_address_for(trunk: Trunk) -> str:
    """The local IP the system routes towards the trunk (for Via and Contact): a UDP socket
    is "connected", which sends nothing."""
    family = socket.AF_INET6 if ":" in trunk.host else socket.AF_INET
    infos = socket.getaddrinfo(trunk.host, trunk.port, family, socket.SOCK_DGRAM)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(infos[0][4])
        return probe.getsockname()[0]


async def run_sipp(
    scenario: str,
    trunk: Trunk,
    seconds: float,
    tls: ssl.SSLContext | None = None,
    target_uri: str = "",
) -> list[TracedMessage]:
    """Runs `scenario` once against `trunk`, for at most `seconds`; the traced messages.
    `target_uri` is what the scenario's `[field0]` reads (`monitor.sip.scenario.TARGET`),
    from an injection file: an IPv6 literal in it is not taken for a SIPp keyword.
    A TLS trunk goes through `tls_relay` (certificates checked with `tls`, else the system's
    CAs) unless this SIPp has TLS itself. Raises `ProbeFailure` when SIPp is missing or the
    trunk's name does not resolve, and `TrunkConnectError` when the TLS connection to the
    trunk fails (then SIPp never starts: nothing is dialled)."""
    binary = shutil.which(SIPP)
    if binary is None:
        raise ProbeFailure("sip_tool_missing", "sipp is not installed (Debian: sip-tester)")
    try:
        local_ip = await asyncio.to_thread(local_address_for, trunk)
    except OSError as exc:
        raise ProbeFailure("dns_error", f"cannot reach trunk {trunk.host}: {exc}") from None
    deadline = asyncio.get_running_loop().time() + seconds + 1.0
    async with _reach(trunk, binary, tls, seconds, local_ip) as (target, flag):
        with tempfile.TemporaryDirectory(prefix="contact-monitor-sip-") as folder:
            # The scenario may hold the digest password: the folder is private (0700).
            scenario_path = Path(folder) / "scenario.xml"
            scenario_path.write_text(scenario, encoding="iso-8859-1", errors="replace")
            os.chmod(scenario_path, 0o600)
            trace = Path(folder) / "trace.log"
            fields = _injection_file(Path(folder), target_uri)
            args = [
                binary, "-sf", str(scenario_path), target, "-t", flag,
                "-i", local_ip, "-m", "1", "-l", "1", "-nostdin", "-nd",
                "-trace_msg", "-message_file", str(trace),
                "-timeout", f"{max(seconds, 1):.0f}s", "-timeout_error",
                "-max_recv_loops", "100", "-max_sched_loops", "100", "-inf", str(fields),
            ]  # fmt: skip
            for _attempt in range(3):
                await _run(args, folder, deadline - asyncio.get_running_loop().time())
                messages = parse_trace(_read_bounded(trace))
                # SIPp sometimes fails its TCP connect at once (EAGAIN) and sends nothing:
                # that is ours, not the trunk's fault, and nothing was dialled; try again.
                if messages or deadline - asyncio.get_running_loop().time() < seconds / 2:
                    return messages
                await asyncio.sleep(0.1)
            return messages


def _injection_file(folder: Path, target_uri: str) -> Path:
    """SIPp's injection file for one call: `[field0]` is `target_uri` (fields end at ";",
    which no URI we build holds)."""
    if ";" in target_uri or "\n" in target_uri:
        raise ValueError(f"not a field SIPp can inject: {target_uri!r}")
    path = folder / "fields.csv"
    path.write_text(f"SEQUENTIAL\n{target_uri};\n", encoding="ascii", errors="replace")
    return path


@contextlib.asynccontextmanager
async def _reach(
    trunk: Trunk, binary: str, tls: ssl.SSLContext | None, seconds: float, local_ip: str
) -> AsyncIterator[tuple[str, str]]:
    """Where SIPp sends and its `-t` flag: the trunk itself, or for TLS without a TLS
    SIPp, the loopback end of a `tls_relay` to it (SIPp speaks TCP, RFC 3261 §18), in the
    address family SIPp is bound to (`-i local_ip`)."""
    if trunk.transport != "tls" or await _has_tls(binary):
        yield trunk.hostport, _TRANSPORT_FLAGS[trunk.transport]
        return
    context = tls or ssl.create_default_context()
    loopback = "::1" if ":" in local_ip else "127.0.0.1"
    async with tls_relay(trunk.host, trunk.port, context, seconds, loopback) as port:
        yield Trunk(loopback, port, "tcp").hostport, _TRANSPORT_FLAGS["tcp"]


_TLS_BUILDS: dict[str, bool] = {}


async def _has_tls(binary: str) -> bool:
    """Whether this SIPp was built with OpenSSL: its version string then names TLS
    ("SIPp v3.6.1-TLS-SCTP-PCAP-RTPSTREAM"); asked once per binary."""
    if binary not in _TLS_BUILDS:
        process = await asyncio.create_subprocess_exec(
            binary, "-v", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with asyncio.timeout(5):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            output = b""
        _TLS_BUILDS[binary] = b"-TLS" in output
    return _TLS_BUILDS[binary]


async def _run(args: list[str], folder: str, seconds: float) -> None:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=folder,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # a SIGINT to the daemon's terminal is not SIPp's
    )
    try:
        async with asyncio.timeout(seconds):
            await process.wait()
    except TimeoutError:
        pass  # what the trace holds so far is the answer
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):  # reap it even when we are cancelled
                await asyncio.shield(process.wait())


def _read_bounded(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_TRACE_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
