"""SMTP reachability of an e-mail channel's best MX host: banner, EHLO, optional STARTTLS."""

from __future__ import annotations

import contextlib
from typing import Any

import aiosmtplib

from monitor.config import EmailChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, failure_from_exception, guarded
from monitor.probers.mx import MailHost, mail_hosts, mx_details

__all__ = ["probe_smtp"]

LOCAL_HOSTNAME = "contact-monitor.invalid"


@guarded
async def probe_smtp(channel: EmailChannel, ctx: ProbeContext) -> ProbeResult:
    """Talks to the most preferred MX host that has an address, as a sender's MTA would."""
    hosts = await mail_hosts(channel.domain, ctx)  # the MX check is part of this probe
    host = next(h for h in hosts if h.addresses)
    details: dict[str, Any] = {
        **mx_details(hosts),
        "smtp_host": host.name,
        "smtp_port": channel.smtp_port,
    }
    client = aiosmtplib.SMTP(
        hostname=host.addresses[0],
        port=channel.smtp_port,
        local_hostname=LOCAL_HOSTNAME,
        timeout=ctx.timeout_for(channel),
        start_tls=False,
        use_tls=False,
        tls_context=ctx.ssl_context,
    )
    try:
        await _session(client, channel, host, details)
    finally:
        client.close()
    return ProbeResult(True, details=details)


async def _session(
    client: aiosmtplib.SMTP, channel: EmailChannel, host: MailHost, details: dict[str, Any]
) -> None:
    details["smtp_stage"] = "connect"
    banner = await _step(client.connect(), "smtp_banner", details)
    details.update(smtp_stage="banner", smtp_banner=banner.message[:200])
    await _step(client.ehlo(), "smtp_ehlo", details)
    details["smtp_stage"] = "ehlo"
    if channel.smtp == "starttls":
        if not client.supports_extension("starttls"):
            raise ProbeFailure(
                "smtp_no_starttls", f"{host.name} does not offer STARTTLS", **details
            )
        await _step(client.starttls(server_hostname=host.name), "smtp_starttls", details)
        details["smtp_stage"] = "starttls"
    # The server answered everything we asked; a rude goodbye is not an outage.
    with contextlib.suppress(aiosmtplib.SMTPException):
        await client.quit()
    details["smtp_stage"] = "done"


async def _step(call: Any, reason: str, details: dict[str, Any]) -> Any:
    """Await one SMTP step; an SMTP refusal becomes `reason`, a network failure its own."""
    try:
        return await call
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPConnectResponseError) as exc:
        raise ProbeFailure(
            reason, f"{details['smtp_host']} answered {exc.code} {exc.message[:200]}", **details
        ) from None
    except aiosmtplib.SMTPTimeoutError:
        raise ProbeFailure(
            "timeout",
            f"{details['smtp_host']} stopped answering at {details['smtp_stage']}",
            **details,
        ) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        failure, message = failure_from_exception(exc)
        if failure in ("error", "connect_failed") and reason != "smtp_banner":
            failure = reason
        raise ProbeFailure(failure, f"{details['smtp_host']}: {message}", **details) from None
