"""A SIP network on loopback for the tests: Kamailio as the trunk (digest authentication,
routing numbers to far ends by their last digits) and one SIPp UAS per far-end behaviour."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from servers import free_port

USERNAME, PASSWORD, REALM = "monitor", "s3cret-Trunk", "monitor.test"
# Far ends by test case: what each one does with an INVITE (see far_end_scenario).
FAR_ENDS = {
    "rings": "ring",
    "early-media": "early",
    "answers": "answer",
    "not-found": "404 Not Found",
    "gone": "410 Gone|1",
    "busy": "486 Busy Here|17",
    "unavailable": "480 Temporarily Unavailable|18",
    "trunk-down": "503 Service Unavailable",
    "silent": "silent",
}
_REPLY = """SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]FE[call_number]
[last_Call-ID:]
[last_CSeq:]
{extra}Contact: <sip:far@[local_ip]:[local_port];transport=[transport]>
Content-Length: 0
"""


def _send(status: str, extra: str = "", cseq: str | None = None) -> str:
    text = _REPLY.format(status=status, extra=extra)
    if cseq:
        text = text.replace("[last_CSeq:]", cseq)
    return f"<send><![CDATA[\n{text}\n]]></send>\n"


_INVITE = (
    '<recv request="INVITE" crlf="true"><action><ereg regexp="[0-9]+" search_in="hdr" '
    'header="CSeq:" assign_to="invcseq"/></action></recv>\n'
)
_CANCELLED = (
    '<recv request="CANCEL"/>\n'
    + _send("200 OK")
    + _send("487 Request Terminated", cseq="CSeq: [$invcseq] INVITE")
    + '<recv request="ACK" next="end"/>\n'
)
_ANSWER = (
    _send("200 OK", "[last_Record-Route:]\n")
    + '<recv request="ACK"/>\n<recv request="BYE"/>\n'
    + _send("200 OK")
    + '<nop next="end"/>\n'
)


def far_end_scenario(behaviour: str) -> str:
    """SIPp UAS XML: `ring` (180, answered after 10 s unless cancelled), `early` (183),
    `answer` (200 at once), `silent` (never answers), or a status like `486 Busy Here` with
    an optional `|Q.850 cause`."""
    body = _INVITE
    wait_cancel = '<recv request="CANCEL" timeout="{ms}" ontimeout="{then}" next="cancel"/>\n'
    if behaviour in ("ring", "early"):
        status = "180 Ringing" if behaviour == "ring" else "183 Session Progress"
        body += _send(status, "[last_Record-Route:]\n")
        body += wait_cancel.format(ms=10000, then="answer")
        body += '<label id="answer"/>\n' + _ANSWER
    elif behaviour == "answer":
        body += _ANSWER
    elif behaviour == "silent":
        body += wait_cancel.format(ms=30000, then="end")
    else:
        status, _, cause = behaviour.partition("|")
        reason = f'Reason: Q.850;cause={cause};text="test"\n' if cause else ""
        body += _send(status, reason) + '<recv request="ACK" next="end"/>\n'
    cancel = '<label id="cancel"/>\n' + _CANCELLED.replace('<recv request="CANCEL"/>\n', "")
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="far end">\n'
        + body
        + cancel
        + '<label id="end"/>\n</scenario>\n'
    )


KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=2
tcp_children=2
disable_tcp=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
listen=udp:[::1]:{port}
listen=tcp:[::1]:{port}
{tls_listen}mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "auth.so"
{tls_module}modparam("tm", "fr_timer", 30000)
modparam("tm", "fr_inv_timer", 60000)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route() || is_method("ACK|BYE")) {{ t_relay(); exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (!is_method("INVITE|OPTIONS")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    if (!pv_proxy_authenticate("{realm}", "{password}", "0") || $au != "{username}") {{
        proxy_challenge("{realm}", "0"); exit;
    }}
    consume_credentials();
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    record_route();
{routes}
    sl_send_reply("404", "Not Found"); exit;
}}

# A proxy turns a far end's 503 into 500 (RFC 3261 §16.7); a trunk whose route is down
# says 503 itself, which is what this plays.
failure_route[PASS_503] {{
    if (t_check_status("503")) {{ t_reply("503", "Service Unavailable"); }}
}}
"""


@dataclass
class SipNetwork:
    """Kamailio on `port` (UDP and TCP) routing `+7999100000NN` to the far end `NN`; with
    `tls_cert`, also on `tls_port` over TLS (Kamailio's tls module) with that certificate."""

    folder: Path
    port: int = 0
    tls_cert: trustme.LeafCert | None = None
    tls_port: int = 0
    numbers: dict[str, str] = field(default_factory=dict)  # behaviour -> E.164 number
    _procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, behaviours: list[str]) -> SipNetwork:
        """Starts the far ends and Kamailio; tries again on fresh ports if one of them could
        not bind (another test run on the machine may have taken a port meanwhile)."""
        for _attempt in range(3):
            if self._start_once(behaviours):
                return self
            self.stop()
            self._procs.clear()
        logs = {p.name: p.read_text(errors="replace")[-500:] for p in self.folder.glob("*.log")}
        raise AssertionError(f"the SIP network did not start: {logs}")

    def _start_once(self, behaviours: list[str]) -> bool:
        sipp, kamailio = shutil.which("sipp"), shutil.which("kamailio") or "/usr/sbin/kamailio"
        assert sipp, "sipp missing: `make test` installs Debian's sip-tester"
        assert Path(kamailio).exists(), "kamailio missing: `make test` installs it"
        routes = ""
        for i, behaviour in enumerate(behaviours, start=1):
            far_port = free_port(socket.SOCK_DGRAM)
            scenario = self.folder / f"far-{i}.xml"
            scenario.write_text(far_end_scenario(behaviour))
            self._spawn(
                [sipp, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(far_port), "-nostdin",
                 "-nd", "-trace_err", "-error_file", str(self.folder / f"far-{i}.err")],
                f"far-{i}.log",
            )  # fmt: skip
            number = f"+7999100{i:04d}"
            self.numbers[behaviour] = number
            routes += (
                f'    if ($rU == "{number}") {{ $du = "sip:127.0.0.1:{far_port}"; '
                't_on_failure("PASS_503"); t_relay(); exit; }\n'
            )
        self.port = free_port()
        config = self.folder / "kamailio.cfg"
        config.write_text(
            KAMAILIO_CFG.format(
                port=self.port, realm=REALM, username=USERNAME, password=PASSWORD, routes=routes,
                **self._tls_config(),
            )
        )  # fmt: skip
        self._spawn(
            [kamailio, "-f", str(config), "-DD", "-E", "-m", "32", "-M", "4", "-Y",
             str(self.folder), "-P", str(self.folder / "kamailio.pid")],
            "kamailio.log",
        )  # fmt: skip
        return self._trunk_answers() and all(proc.poll() is None for proc in self._procs)

    def _tls_config(self) -> dict[str, str]:
        """The TLS listener and module lines of kamailio.cfg (empty without `tls_cert`)."""
        if self.tls_cert is None:
            return {"tls_listen": "", "tls_module": ""}
        self.tls_port = free_port()
        cert, key = self.folder / "trunk-cert.pem", self.folder / "trunk-key.pem"
        self.tls_cert.cert_chain_pems[0].write_to_path(str(cert))
        self.tls_cert.private_key_pem.write_to_path(str(key))
        return {
            "tls_listen": (
                f"enable_tls=yes\nlisten=tls:127.0.0.1:{self.tls_port}\n"
                f"listen=tls:[::1]:{self.tls_port}\n"
            ),
            "tls_module": (
                'loadmodule "tls.so"\n'
                f'modparam("tls", "certificate", "{cert}")\n'
                f'modparam("tls", "private_key", "{key}")\n'
                'modparam("tls", "tls_method", "TLSv1.2+")\n'
                'modparam("tls", "verify_certificate", 0)\n'
                'modparam("tls", "require_certificate", 0)\n'
            ),
        }

    def _trunk_answers(self, seconds: float = 10.0) -> bool:
        """Kamailio answers an OPTIONS over UDP (with a 407: any answer means it listens)."""
        request = (
            f"OPTIONS sip:127.0.0.1:{self.port} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKready\r\nFrom: <sip:t@t>;tag=1\r\n"
            f"To: <sip:127.0.0.1:{self.port}>\r\nCall-ID: ready\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        deadline = time.monotonic() + seconds
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.2)
            request = request.replace(b"127.0.0.1:9", f"127.0.0.1:{sock.getsockname()[1]}".encode())
            while time.monotonic() < deadline:
                if any(proc.poll() is not None for proc in self._procs):
                    return False
                sock.sendto(request, ("127.0.0.1", self.port))
                try:
                    sock.recvfrom(65535)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                time.sleep(0.2)  # the far ends started before Kamailio; give them a moment
                return True
        return False

    def _spawn(self, args: list[str], log: str) -> None:
        with (self.folder / log).open("wb") as out:
            self._procs.append(
                subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.folder)
            )

    def trunk(self, transport: str = "udp", host: str = "127.0.0.1") -> str:
        """The trunk URI for `transport` (udp, tcp or tls: then the TLS port); Kamailio
        listens on 127.0.0.1 and on [::1]."""
        port = self.tls_port if transport == "tls" else self.port
        host = f"[{host}]" if ":" in host else host
        return f"sip:{host}:{port};transport={transport}"

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
