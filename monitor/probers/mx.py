"""E-mail deliverability through DNS: the domain's MX records and their addresses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from monitor.config import EmailChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, forget, guarded, note

__all__ = ["MailHost", "mail_hosts", "mx_details", "probe_mx"]


@dataclass(frozen=True)
class MailHost:
    name: str  # the exchange, without the trailing dot
    preference: int
    addresses: tuple[str, ...]  # IPv4 then IPv6; empty when the name has none
    implicit: bool = False  # the domain itself, for want of MX records (RFC 5321 §5.1)


async def mail_hosts(domain: str, ctx: ProbeContext) -> list[MailHost]:
    """MX hosts of `domain` by preference, with addresses; `ProbeFailure` when unusable."""
    note(phase="dns")  # the guard's timeout, if it comes first, is a DNS timeout too
    try:
        hosts = await _mail_hosts(domain, ctx)
    except ProbeFailure:
        forget("phase")
        raise
    forget("phase")  # not on cancellation: the guard reads it
    return hosts


async def _mail_hosts(domain: str, ctx: ProbeContext) -> list[MailHost]:
    try:
        answer = await _query(ctx, domain, "MX")
    except ProbeFailure as failure:
        if failure.reason != "no_mx":
            raise
        return await _implicit_mx(domain, ctx)
    records = sorted(answer, key=lambda r: (r.preference, str(r.exchange)))
    if any(r.exchange == dns.name.root for r in records):
        raise ProbeFailure(
            "null_mx",
            f"{domain} declares it accepts no mail (null MX, RFC 7505)",
            mx_count=len(records),
        )
    names = [r.exchange.to_text(omit_final_dot=True) for r in records]
    glue = _additional_addresses(answer.response)
    addresses = await asyncio.gather(
        *(_addresses(ctx, name, glue.get(name.lower())) for name in names)
    )
    hosts = [
        MailHost(n, r.preference, a) for n, r, a in zip(names, records, addresses, strict=True)
    ]
    if not any(host.addresses for host in hosts):
        raise ProbeFailure(
            "mx_no_address",
            f"no MX host of {domain} has an address",
            mx_count=len(hosts),
            mx_hosts=names,
        )
    return hosts


async def _implicit_mx(domain: str, ctx: ProbeContext) -> list[MailHost]:
    """A domain without MX records is its own mail host when it has an address: "the domain
    name ... MUST be treated as if it was associated with an implicit MX RR, with a
    preference of 0, pointing to that host" (RFC 5321 §5.1); a sending server delivers
    there, so the address works. `no_mx` when it has no address either."""
    addresses = await _addresses(ctx, domain, None)
    if not addresses:
        raise ProbeFailure(
            "no_mx", f"{domain} has no MX records and no address to deliver to", mx_count=0
        )
    return [MailHost(domain, 0, addresses, implicit=True)]


async def _query(ctx: ProbeContext, name: str, rdtype: str) -> dns.resolver.Answer:
    try:
        return await ctx.resolver.resolve(name, rdtype, lifetime=ctx.defaults.timeout)
    except dns.resolver.NXDOMAIN:
        raise ProbeFailure("dns_nxdomain", f"{name} does not exist (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        if rdtype == "MX":
            raise ProbeFailure("no_mx", f"{name} has no MX records", mx_count=0) from None
        raise
    except dns.resolver.NoNameservers as exc:
        raise ProbeFailure("dns_servfail", f"no server answered for {name}: {exc}"[:300]) from None
    except dns.exception.Timeout:
        raise ProbeFailure("dns_timeout", f"DNS lookup of {name} {rdtype} timed out") from None
    except dns.exception.DNSException as exc:
        raise ProbeFailure(
            "dns_error", f"DNS lookup of {name} {rdtype} failed: {exc}"[:300]
        ) from None


def _additional_addresses(response: dns.message.Message) -> dict[str, list[str]]:
    """Addresses the server volunteered beside the MX answer (RFC 1035 4.3.2), by host."""
    found: dict[str, list[str]] = {}
    for rrset in sorted(response.additional, key=lambda r: r.rdtype):  # A before AAAA
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            host = rrset.name.to_text(omit_final_dot=True).lower()
            found.setdefault(host, []).extend(r.address for r in rrset)
    return found


async def _addresses(ctx: ProbeContext, name: str, known: list[str] | None) -> tuple[str, ...]:
    """The host's addresses: those the MX answer carried, else its A and AAAA records
    (two queries a probe saves whenever the resolver volunteers them)."""
    if known:
        return tuple(known)
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            found += [r.address for r in await _query(ctx, name, rdtype)]
        except (ProbeFailure, dns.resolver.NoAnswer):
            continue
    return tuple(found)


def _is_implicit(hosts: list[MailHost]) -> bool:
    return len(hosts) == 1 and hosts[0].implicit


@guarded
async def probe_mx(channel: EmailChannel, ctx: ProbeContext) -> ProbeResult:
    """Succeeds when the address's domain has at least one MX host with an address, or no
    MX record but an address of its own (the implicit MX of RFC 5321 §5.1)."""
    return ProbeResult(True, details=mx_details(await mail_hosts(channel.domain, ctx)))


def mx_details(hosts: list[MailHost]) -> dict[str, Any]:
    """What an MX lookup found, as probe details; an implicit MX (RFC 5321 §5.1) counts no
    MX record and says `implicit_mx: true`."""
    implicit = _is_implicit(hosts)
    return {
        "mx_count": 0 if implicit else len(hosts),
        **({"implicit_mx": True} if implicit else {}),
        "mx_hosts": [
            {"host": h.name, "preference": h.preference, "addresses": list(h.addresses)}
            for h in hosts
        ],
    }
