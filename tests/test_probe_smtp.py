"""The SMTP prober against aiosmtpd and misbehaving TCP peers on loopback."""

from __future__ import annotations

import time
from typing import Any

from conftest import MAIL_DOMAIN, MAIL_HOST

from monitor.config import EmailChannel
from monitor.probers import ProbeContext, probe_channel, probe_smtp


def email(
    port: int, mode: str = "connect", timeout: str = "2s", domain: str = MAIL_DOMAIN
) -> EmailChannel:
    return EmailChannel.model_validate(
        {
            "id": "b2b",
            "kind": "email",
            "email": f"b2b@{domain}",
            "smtp": mode,
            "smtp_port": port,
            "timeout": timeout,
        }
    )


async def test_success_when_server_greets_and_answers_ehlo(smtp_server: int, ctx: ProbeContext):
    """A 220 banner and a good EHLO reach stage done on the best MX host."""
    result = await probe_smtp(email(smtp_server), ctx)
    assert result.success, result
    assert result.details["smtp_stage"] == "done"
    assert result.details["smtp_host"] == MAIL_HOST
    assert result.details["smtp_banner"]


async def test_domain_itself_is_the_mail_host_when_it_has_no_mx(
    smtp_server: int, ctx: ProbeContext
):
    """No MX record but an A record: the probe talks SMTP to the domain itself, as a
    sending server does (implicit MX, RFC 5321 §5.1)."""
    result = await probe_smtp(email(smtp_server, domain="nomx.test"), ctx)
    assert result.success, result
    assert (result.details["smtp_host"], result.details["implicit_mx"]) == ("nomx.test", True)


async def test_success_when_starttls_verifies_against_mx_name(smtp_server: int, ctx: ProbeContext):
    """STARTTLS completes with a certificate valid for the MX host name."""
    result = await probe_smtp(email(smtp_server, "starttls"), ctx)
    assert result.success, result
    assert result.details["smtp_stage"] == "done"


async def test_smtp_no_starttls_when_server_does_not_offer_it(
    smtp_server_without_tls: int, ctx: ProbeContext
):
    """A server without STARTTLS fails a starttls probe with smtp_no_starttls."""
    result = await probe_smtp(email(smtp_server_without_tls, "starttls"), ctx)
    assert result.reason == "smtp_no_starttls"


async def test_smtp_banner_when_server_greets_with_554(raw_server: Any, ctx: ProbeContext):
    """A 554 greeting fails with smtp_banner and quotes the server."""
    server = raw_server(lambda conn: conn.sendall(b"554 5.7.1 no service for you\r\n"))
    result = await probe_smtp(email(server.port), ctx)
    assert result.reason == "smtp_banner"
    assert "554" in result.message


async def test_timeout_when_server_never_sends_banner(silent_server: Any, ctx: ProbeContext):
    """A tarpit that accepts and never greets ends at the probe's timeout."""
    started = time.monotonic()
    result = await probe_smtp(email(silent_server.port, timeout="0.5s"), ctx)
    assert result.reason == "timeout"
    assert time.monotonic() - started < 1.5


async def test_connect_refused_when_port_is_closed(closed_port: int, ctx: ProbeContext):
    """No listener on the MX host's port fails with connect_refused."""
    result = await probe_smtp(email(closed_port), ctx)
    assert result.reason == "connect_refused"


async def test_email_channel_runs_mx_then_smtp_when_smtp_is_on(smtp_server: int, ctx: ProbeContext):
    """An e-mail channel with smtp on reports MX and SMTP details in one result."""
    result = await probe_channel(email(smtp_server), ctx)
    assert result.success, result
    assert result.details["mx_count"] == 2
    assert result.details["smtp_stage"] == "done"
