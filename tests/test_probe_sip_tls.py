"""SIP test calls through a TLS trunk (RFC 3261 §26.2, RFC 5630): Kamailio with its tls
module as the trunk, a certificate from the tests' trustme CA (tests/sip_network.py).
Debian's SIPp has no TLS, so the call goes through `monitor.sip.tls_relay`."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sip_network import FAR_ENDS, PASSWORD, SipNetwork

from monitor.cli import main
from monitor.config import Defaults, PhoneChannel
from monitor.model import ProbeResult
from monitor.probers import make_probe_context, probe_channel
from monitor.sip import runner
from monitor.sip.budget import CallBudget
from monitor.sip.scenario import CallSpec, call_scenario

TIMEOUT = 3.0


@pytest.fixture(autouse=True)
def sip_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIP_PASSWORD", PASSWORD)


@pytest.fixture
def sipp_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every SIPp command line the probe starts (SIPp still runs)."""
    seen: list[list[str]] = []
    real = runner._run

    async def spy(args: list[str], folder: str, seconds: float) -> None:
        seen.append(list(args))
        await real(args, folder, seconds)

    monkeypatch.setattr(runner, "_run", spy)
    return seen


def sip_settings(trunk: str, ca_file: Path | None, **sip: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "timeout": f"{TIMEOUT}s",
        "sip": {
            "trunk": trunk,
            "from": "sip:monitor@monitor.test",
            "auth": {"username": "monitor", "password_env": "SIP_PASSWORD"},
            **sip,
        },
    }
    if ca_file is not None:
        settings["tls"] = {"ca_file": str(ca_file)}
    return settings


def probe(
    network: SipNetwork, case: str, tmp: Path, ca_file: Path | None, trunk: str | None = None
) -> ProbeResult:
    defaults = Defaults.model_validate(sip_settings(trunk or network.trunk("tls"), ca_file))
    ctx = make_probe_context(defaults, tmp, call_budget=CallBudget())
    line = PhoneChannel(id=case, kind="phone", phone=network.numbers[FAR_ENDS[case]], check="sip")
    return asyncio.run(probe_channel(line, ctx))


def test_line_reached_with_ringing_and_post_dial_delay_when_trunk_is_tls(
    sip_tls_network: SipNetwork, ca_file: Path, tmp_path: Path, sipp_runs: list[list[str]]
):
    """A number that rings through a TLS trunk is reachable: 180, a post-dial delay, and
    the call cancelled at once; SIPp spoke TCP to the loopback relay, not to the trunk."""
    result = probe(sip_tls_network, "rings", tmp_path, ca_file)
    assert (result.success, result.reason) == (True, None), result
    assert result.details["sip_status_code"] == 180
    assert 0 < result.details["post_dial_delay_seconds"] < TIMEOUT
    assert result.details["ended_with"] == "CANCEL"
    (args,) = sipp_runs
    assert args[args.index("-t") + 1] == "t1"
    target = args[args.index("-t") - 1]
    assert target.startswith("127.0.0.1:")
    assert target != f"127.0.0.1:{sip_tls_network.tls_port}"


def test_line_reached_when_tls_trunk_is_an_ipv6_literal(
    sip_tls_network: SipNetwork, ca_file: Path, tmp_path: Path
):
    """`sip:[::1]:port;transport=tls`: the relay listens on ::1, the certificate's IP
    address ::1 is verified, and the IPv6 Request-URI reaches the trunk intact."""
    trunk = sip_tls_network.trunk("tls", host="::1")
    result = probe(sip_tls_network, "rings", tmp_path, ca_file, trunk)
    assert (result.success, result.details.get("sip_status_code")) == (True, 180), result


def test_answered_call_hung_up_in_dialog_when_trunk_is_tls(
    sip_tls_network: SipNetwork, ca_file: Path, tmp_path: Path
):
    """An answering line is ACKed and hung up (BYE, 200) through the record-routed TLS
    trunk: in-dialog requests travel the same TLS connection."""
    result = probe(sip_tls_network, "answers", tmp_path, ca_file)
    assert (result.success, result.details["sip_status_code"]) == (True, 200), result
    assert result.details["ended_with"] == "BYE"


def test_number_not_in_service_when_tls_trunk_answers_404(
    sip_tls_network: SipNetwork, ca_file: Path, tmp_path: Path
):
    """A 404 through the TLS trunk is number_not_in_service with its status code."""
    result = probe(sip_tls_network, "not-found", tmp_path, ca_file)
    assert (result.success, result.reason) == (False, "number_not_in_service"), result
    assert result.details["sip_status_code"] == 404


def test_line_reached_when_trunk_uri_is_sips(
    sip_tls_network: SipNetwork, ca_file: Path, tmp_path: Path
):
    """A `sips:` trunk (TLS, port given) is dialled with a sips: Request-URI and Contact
    (RFC 3261 §8.1.1.8), which Kamailio accepts."""
    trunk = f"sips:127.0.0.1:{sip_tls_network.tls_port}"
    result = probe(sip_tls_network, "rings", tmp_path, ca_file, trunk=trunk)
    assert (result.success, result.details["sip_status_code"]) == (True, 180), result


def test_options_up_when_trunk_is_tls(sip_tls_network: SipNetwork, ca_file: Path, tmp_path: Path):
    """OPTIONS to a TLS trunk with digest auth: 200 is up."""
    settings = sip_settings(sip_tls_network.trunk("tls"), ca_file)
    ctx = make_probe_context(Defaults.model_validate(settings), tmp_path, call_budget=CallBudget())
    line = PhoneChannel(
        id="sbc", kind="phone", phone="8 800 555-89-82", check="sip", sip={"mode": "options"}
    )
    result = asyncio.run(probe_channel(line, ctx))
    assert (result.success, result.details.get("sip_status_code")) == (True, 200), result


@pytest.mark.parametrize(
    ("trust_ca", "host", "reason"),
    [
        (False, "127.0.0.1", "tls_untrusted"),  # only the system's CAs: ours is unknown
        (True, "localhost", "tls_hostname_mismatch"),  # the certificate names 127.0.0.1
    ],
)
def test_fails_without_dialling_when_trunk_certificate_is_rejected(
    sip_tls_network: SipNetwork,
    ca_file: Path,
    tmp_path: Path,
    sipp_runs: list[list[str]],
    trust_ca: bool,
    host: str,
    reason: str,
):
    """A trunk certificate from an unknown CA, or for another host name, fails the TLS
    handshake with the HTTP prober's reason; SIPp never starts, and the result says so."""
    trunk = sip_tls_network.trunk("tls", host=host)
    result = probe(sip_tls_network, "rings", tmp_path, ca_file if trust_ca else None, trunk)
    assert (result.success, result.reason) == (False, reason), result
    assert result.details["dialled"] is False
    assert "nothing was dialled" in result.message
    assert sipp_runs == []


@pytest.fixture
def plaintext_trunk(raw_server: Any) -> Any:
    """A "TLS" port that answers in plain SIP, as a trunk whose TLS is switched off."""
    return raw_server(lambda conn: conn.sendall(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"))


@pytest.mark.parametrize(
    ("peer", "reason"),
    [
        ("refused", "trunk_unreachable"),  # as a TCP trunk that refuses
        ("expired", "tls_expired"),
        ("plaintext", "tls_error"),
        ("silent", "timeout"),  # accepts, never says a word: the handshake runs out of time
    ],
)
def test_fails_without_dialling_when_tls_trunk_is_broken(
    request: pytest.FixtureRequest,
    ca_file: Path,
    tmp_path: Path,
    sipp_runs: list[list[str]],
    peer: str,
    reason: str,
):
    """A TLS trunk port that refuses, shows an expired certificate, speaks plaintext or
    stays silent fails with its reason within the probe's timeout; SIPp never starts."""
    fixture = {
        "refused": "closed_port",
        "expired": "expired_https_server",
        "plaintext": "plaintext_trunk",
        "silent": "silent_server",
    }[peer]
    server = request.getfixturevalue(fixture)
    port = server if isinstance(server, int) else server.port
    settings = sip_settings(f"sip:127.0.0.1:{port};transport=tls", ca_file)
    ctx = make_probe_context(Defaults.model_validate(settings), tmp_path, call_budget=CallBudget())
    line = PhoneChannel(id="h", kind="phone", phone="8 800 555-89-82", check="sip")
    result = asyncio.run(probe_channel(line, ctx))
    assert (result.success, result.reason) == (False, reason), result
    assert result.details["dialled"] is False
    assert result.duration_seconds < TIMEOUT + 0.5
    assert sipp_runs == []


@pytest.mark.parametrize(
    ("trunk", "via", "contact"),
    [
        (
            "sip:t.example:5061;transport=tls",
            "SIP/2.0/TLS",
            "<sip:monitor@[local_ip]:[local_port];transport=tls>",
        ),
        ("sips:t.example", "SIP/2.0/TLS", "<sips:monitor@[local_ip]:[local_port]>"),
        ("sip:t.example;transport=tcp", "SIP/2.0/[transport]", "transport=[transport]>"),
    ],
)
def test_scenario_names_tls_when_trunk_is_tls(trunk: str, via: str, contact: str):
    """Via says TLS (RFC 3261 §18.2.1) though SIPp itself speaks TCP to the relay, and the
    Contact is sips: for a sips: Request-URI (§8.1.1.8), else carries transport=tls."""
    parsed = runner.parse_trunk(trunk)
    spec = CallSpec(
        f"{parsed.scheme}:+78005558982@{parsed.hostport}", "sip:monitor@monitor.test",
        None, None, 2000, transport=parsed.transport,
    )  # fmt: skip
    xml = call_scenario(spec)
    vias = re.findall(r"^Via: (\S+) ", xml, re.M)
    assert vias
    assert set(vias) == {via}
    assert all(contact in line for line in re.findall(r"^Contact: .*$", xml, re.M))
    assert "INVITE [field0] SIP/2.0" in xml  # the Request-URI comes from the injection file


def test_sipp_speaks_tls_itself_when_built_with_openssl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A SIPp built with OpenSSL ("-TLS" in its version) gets the trunk itself and `-t l1`,
    with no relay in between."""
    log = tmp_path / "args.txt"
    fake = tmp_path / "sipp"
    fake.write_text(
        f'#!/bin/sh\nif [ "$1" = -v ]; then echo " SIPp v3.6.1-TLS-SCTP."; exit 0; fi\n'
        f'echo "$@" > {log}\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(runner, "SIPP", str(fake))
    settings = sip_settings("sips:127.0.0.1:5061", None)
    ctx = make_probe_context(Defaults.model_validate(settings), tmp_path, call_budget=CallBudget())
    line = PhoneChannel(id="h", kind="phone", phone="8 800 555-89-82", check="sip")
    asyncio.run(probe_channel(line, ctx))
    args = log.read_text().split()
    assert args[args.index("-t") + 1] == "l1"
    assert "127.0.0.1:5061" in args


@pytest.mark.parametrize(
    ("trust_ca", "expected"),
    [
        (True, {"rings": (True, None, 180), "not-found": (False, "number_not_in_service", 404)}),
        (
            False,
            {"rings": (False, "tls_untrusted", None), "not-found": (False, "tls_untrusted", None)},
        ),
    ],
)
def test_check_json_gives_reasons_when_lines_are_called_through_tls_trunk(
    sip_tls_network: SipNetwork,
    ca_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    trust_ca: bool,
    expected: dict[str, tuple[bool, str | None, int | None]],
):
    """`check --format json` on a registry whose trunk is TLS: with the trunk's CA trusted,
    the ringing line is up with 180 and the 404 line number_not_in_service; without it,
    both are tls_untrusted and nothing is dialled."""
    settings = sip_settings(
        sip_tls_network.trunk("tls"), ca_file if trust_ca else None, max_calls_per_day=5
    )
    lines = [
        {"id": case, "kind": "phone", "phone": sip_tls_network.numbers[FAR_ENDS[case]]}
        for case in expected
    ]
    config = tmp_path / "channels.yaml"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "defaults": settings,
                "organizations": [
                    {"id": "acme", "channels": [{**line, "check": "sip"} for line in lines]}
                ],
            }
        )
    )
    main(["check", "--config", str(config), "--format", "json"])
    rows = json.loads(capsys.readouterr().out)["results"]
    got = {
        row["channel"]: (row["success"], row["reason"], row["details"].get("sip_status_code"))
        for row in rows
    }
    assert got == expected
    assert all(row["details"].get("dialled", True) is trust_ca for row in rows)
