"""SMTP reachability of an e-mail channel, tried as a sending mail server tries it
(RFC 5321 §5.1): every MX host in preference order, every address of each (IPv6 and IPv4
racing, RFC 8305 Happy Eyeballs), until one greets and answers EHLO (or HELO), and
STARTTLS when asked."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import time
from asyncio import staggered
from typing import Any

import aiosmtplib

from monitor.config import EmailChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, failure_from_exception, guarded, note
from monitor.probers.mx import MailHost, mail_hosts, mx_details

__all__ = ["helo_name", "probe_smtp"]

RACE_DELAY = 0.25  # seconds an address gets before the next one starts (RFC 8305 §5)


@functools.cache
def _machine_fqdn() -> str:
    return socket.getfqdn()


def helo_name(ctx: ProbeContext) -> str:
    """The name we give in EHLO/HELO: `defaults.smtp.helo_name`, else the machine's FQDN
    (servers refuse names that do not resolve, RFC 5321 §4.1.4)."""
    return ctx.defaults.smtp.helo_name or _machine_fqdn()


@guarded
async def probe_smtp(channel: EmailChannel, ctx: ProbeContext) -> ProbeResult:
    """Succeeds at the first MX host that completes the session; fails with the last
    host's failure. `details.smtp_attempts` lists every host tried and how it ended."""
    deadline = time.monotonic() + ctx.timeout_for(channel) - 0.05  # the guard's, just before
    hosts = await mail_hosts(channel.domain, ctx)  # the MX check is part of this probe
    details: dict[str, Any] = {**mx_details(hosts), "smtp_port": channel.smtp_port}
    attempts: list[dict[str, Any]] = []
    note(**details, smtp_attempts=attempts)
    failure: ProbeFailure | None = None
    session: dict[str, Any] = {}
    usable = [h for h in hosts if h.addresses]
    for index, host in enumerate(usable):
        # A tarpit first host must not eat the time the backups need.
        budget = (deadline - time.monotonic()) / (len(usable) - index)
        session: dict[str, Any] = {**details, "smtp_host": host.name}
        try:
            async with asyncio.timeout(budget):
                await _try_host(channel, ctx, host, session)
        except TimeoutError:
            stage = session.get("smtp_stage", "connect")
            failure = ProbeFailure("timeout", f"{host.name} stopped answering at {stage}")
        except ProbeFailure as refused:
            failure = refused
        else:
            return ProbeResult(True, details={**session, "smtp_attempts": attempts})
        attempts.append(_attempt(host, session, failure))
    assert failure is not None  # mail_hosts guarantees a host with an address
    raise ProbeFailure(failure.reason, failure.message, **session, smtp_attempts=attempts)


def _attempt(host: MailHost, session: dict[str, Any], failure: ProbeFailure) -> dict[str, Any]:
    """How one MX host's session ended: where, at which address, and why."""
    return {
        "host": host.name,
        "address": session.get("smtp_address"),  # the one that answered, if any did
        "addresses": list(host.addresses),
        "stage": session.get("smtp_stage", "connect"),
        "reason": failure.reason,
        "message": failure.message[:200],
    }


async def _try_host(
    channel: EmailChannel, ctx: ProbeContext, host: MailHost, session: dict[str, Any]
) -> None:
    session["smtp_stage"] = "connect"
    note(smtp_host=host.name, smtp_stage="connect")
    try:
        sock, address = await _connect(host.addresses, channel.smtp_port)
    except OSError as exc:
        reason, message = failure_from_exception(exc)
        raise ProbeFailure(reason, f"{host.name}: {message}") from None
    session["smtp_address"] = address
    note(smtp_address=address)
    client = aiosmtplib.SMTP(
        sock=sock,
        local_hostname=helo_name(ctx),
        timeout=ctx.timeout_for(channel),
        start_tls=False,
        use_tls=False,
        tls_context=ctx.ssl_context,
    )
    try:
        await _session(client, channel, host, session)
    finally:
        client.close()
        sock.close()


def _happy_eyeballs_order(addresses: tuple[str, ...]) -> list[str]:
    """IPv6 first, then the families alternating (RFC 8305 §4)."""
    v6 = [a for a in addresses if ipaddress.ip_address(a).version == 6]
    v4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    ordered: list[str] = []
    for pair in zip(v6, v4, strict=False):
        ordered += pair
    longer = v6 if len(v6) > len(v4) else v4
    return ordered + longer[min(len(v6), len(v4)) :]


async def _connect(addresses: tuple[str, ...], port: int) -> tuple[socket.socket, str]:
    """A connected socket to the first of `addresses` that answers, started 250 ms apart;
    the last error when none does."""
    ordered = _happy_eyeballs_order(addresses)
    loop = asyncio.get_running_loop()

    async def attempt(address: str) -> tuple[socket.socket, str]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, port))
        except BaseException:
            sock.close()
            raise
        return sock, address

    factories = [functools.partial(attempt, a) for a in ordered]
    winner, _, errors = await staggered.staggered_race(factories, RACE_DELAY)
    if winner is None:
        raise next((e for e in reversed(errors) if e is not None), OSError("no address"))
    return winner


async def _session(
    client: aiosmtplib.SMTP, channel: EmailChannel, host: MailHost, details: dict[str, Any]
) -> None:
    banner = await _step(client.connect(), "smtp_banner", details)
    details.update(smtp_stage="banner", smtp_banner=banner.message[:200])
    note(smtp_stage="banner")
    try:
        await client.ehlo()
        details["smtp_greeting"] = "ehlo"
    except aiosmtplib.SMTPHeloError:
        # An old or strict server that refuses EHLO still takes HELO (RFC 5321 §4.1.1.1).
        await _step(client.helo(), "smtp_ehlo", details)
        details["smtp_greeting"] = "helo"
    except (aiosmtplib.SMTPException, OSError) as exc:
        await _step(_reraise(exc), "smtp_ehlo", details)
    details["smtp_stage"] = "ehlo"
    note(smtp_stage="ehlo")
    if channel.smtp == "starttls":
        if not client.supports_extension("starttls"):
            raise ProbeFailure("smtp_no_starttls", f"{host.name} does not offer STARTTLS")
        await _step(client.starttls(server_hostname=host.name), "smtp_starttls", details)
        details["smtp_stage"] = "starttls"
    # The server answered everything we asked; a rude goodbye is not an outage.
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()
    details["smtp_stage"] = "done"


async def _reraise(exc: BaseException) -> None:
    raise exc


async def _step(call: Any, reason: str, details: dict[str, Any]) -> Any:
    """Await one SMTP step; an SMTP refusal becomes `reason`, a network failure its own."""
    try:
        return await call
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPConnectResponseError) as exc:
        raise ProbeFailure(
            reason, f"{details['smtp_host']} answered {exc.code} {exc.message[:200]}"
        ) from None
    except aiosmtplib.SMTPTimeoutError:
        raise ProbeFailure(
            "timeout", f"{details['smtp_host']} stopped answering at {details['smtp_stage']}"
        ) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        failure, message = failure_from_exception(exc)
        if failure in ("error", "connect_failed") and reason != "smtp_banner":
            failure = reason
        raise ProbeFailure(failure, f"{details['smtp_host']}: {message}") from None
