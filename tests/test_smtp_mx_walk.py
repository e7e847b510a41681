"""E-mail probes as a sending mail server behaves (RFC 5321 §5.1), through
`check --format json`: every MX host in preference order, every address of each, HELO
when EHLO is refused, the EHLO name the registry gives."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import MAIL_HOST
from servers import free_port

from monitor.cli import main


class _AcceptAll:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "250 OK"


@pytest.fixture
def smtp_server_v6() -> Iterator[int]:
    """aiosmtpd listening on ::1 only."""
    port = free_port()
    controller = Controller(_AcceptAll(), hostname="::1", port=port)
    controller.start()
    yield port
    controller.stop()


def check_email(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dns_port: int,
    domain: str,
    port: int,
    **defaults: Any,
) -> dict[str, Any]:
    channel = {
        "id": "mail",
        "kind": "email",
        "email": f"support@{domain}",
        "smtp": "connect",
        "smtp_port": port,
    }
    registry = {
        "version": 1,
        "defaults": {
            "timeout": "3s",
            "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port},
            **defaults,
        },
        "organizations": [{"id": "acme", "channels": [channel]}],
    }
    path = tmp_path / "registry.yaml"
    path.write_text(json.dumps(registry))
    code = main(["check", "--config", str(path), "--format", "json"])
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert code == (0 if result["success"] else 1), result
    return result


def test_second_mx_answers_when_first_refuses(
    smtp_server: int, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The preferred MX refusing the connection is not an outage: the next one answers, and
    the result names it and what the first one did."""
    result = check_email(tmp_path, capsys, dns_port, "fallback.test", smtp_server)
    assert result["success"], result
    details = result["details"]
    assert (details["smtp_host"], details["smtp_address"]) == (MAIL_HOST, "127.0.0.1")
    (first,) = details["smtp_attempts"]
    assert (first["host"], first["address"], first["reason"]) == (
        "dead.mail.test",
        None,
        "connect_refused",
    )


def test_every_mx_failure_named_when_no_host_answers(
    closed_port: int, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """When every host fails, the reason is the last one's and each host's failure is kept."""
    result = check_email(tmp_path, capsys, dns_port, "fallback.test", closed_port)
    assert (result["success"], result["reason"]) == (False, "connect_refused"), result
    hosts = [a["host"] for a in result["details"]["smtp_attempts"]]
    assert hosts == ["dead.mail.test", MAIL_HOST]
    assert result["details"]["smtp_host"] == MAIL_HOST


def test_success_when_mx_host_has_only_an_ipv6_address(
    smtp_server_v6: int, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """An MX host with an AAAA record and no A record is reached over IPv6."""
    result = check_email(tmp_path, capsys, dns_port, "v6only.test", smtp_server_v6)
    assert result["success"], result
    assert result["details"]["smtp_address"] == "::1"


def helo_only_server(seen: list[str]) -> Any:
    """A mail server that refuses EHLO (502) but takes HELO, recording the names given."""

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.sendall(b"220 old.mail.test SMTP\r\n")
        reader = conn.makefile("rb")
        for _ in range(10):
            line = reader.readline(1024).decode("ascii", "replace").strip()
            if not line:
                return
            verb = line.split(" ")[0].upper()
            seen.append(line)
            if verb == "EHLO":
                conn.sendall(b"502 5.5.2 command not recognised\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 old.mail.test\r\n")

    return serve


def test_helo_used_when_server_refuses_ehlo(
    raw_server: Any, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A server that refuses EHLO but takes HELO is up; the name given is helo_name."""
    seen: list[str] = []
    server = raw_server(helo_only_server(seen))
    result = check_email(
        tmp_path,
        capsys,
        dns_port,
        "mail.test",
        server.port,
        smtp={"helo_name": "monitor.example.org"},
    )
    assert result["success"], result
    assert result["details"]["smtp_greeting"] == "helo"
    assert seen[:2] == ["EHLO monitor.example.org", "HELO monitor.example.org"]


def test_machine_fqdn_given_when_helo_name_is_unset(
    raw_server: Any, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Without defaults.smtp.helo_name the EHLO name is the machine's FQDN."""
    seen: list[str] = []
    server = raw_server(helo_only_server(seen))
    check_email(tmp_path, capsys, dns_port, "mail.test", server.port)
    assert seen[0] == f"EHLO {socket.getfqdn()}"


def test_idn_mail_domain_probed_when_name_is_valid_idna2008(
    smtp_server: int, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """An address at a Unicode domain is looked up by its A-label and probed."""
    result = check_email(tmp_path, capsys, dns_port, "пример.test", smtp_server)
    assert result["success"], result


def test_validate_refuses_mail_domain_when_it_is_not_valid_idna2008(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A mail domain IDNA2008 forbids is a registry error, never a probe `error`."""
    channel = {"id": "mail", "kind": "email", "email": "support@☃.example.org"}
    path = tmp_path / "registry.yaml"
    path.write_text(
        json.dumps({"version": 1, "organizations": [{"id": "a", "channels": [channel]}]})
    )
    assert main(["validate", "--config", str(path)]) == 2
    assert "is not a valid host name" in capsys.readouterr().err


def test_ipv4_address_answers_when_ipv6_address_of_same_host_refuses(
    smtp_server: int, dns_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A host with a dead IPv6 address and a working IPv4 one is up: both are tried
    (IPv6 first, as Happy Eyeballs orders them)."""
    result = check_email(tmp_path, capsys, dns_port, "dual.test", smtp_server)
    assert result["success"], result
    assert (result["details"]["smtp_host"], result["details"]["smtp_address"]) == (
        "dual.mail.test",
        "127.0.0.1",
    )
    assert result["details"]["smtp_attempts"] == []
