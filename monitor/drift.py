"""Drift: what official pages show compared with what the registry says.

A pure function of the registry and the latest scan of each source, so the daemon and
the one-shot commands agree, and tests need no network.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from monitor.config import Channel, Organization, Registry
from monitor.emails import canonical_email
from monitor.extract import normalise_url
from monitor.model import Contacts, Finding, ProbeResult
from monitor.phones import canonical, e164, parse_valid

__all__ = ["SourceKey", "contact_key", "find_drift"]

SourceKey = tuple[str, str]  # (org id, source id)


@dataclass(frozen=True)
class _Known:
    channel: Channel
    e164: str | None = None
    extension: str | None = None


def contact_key(channel: Channel, region: str) -> str:
    """The canonical form of a channel's contact: E.164 (`;ext=` if any), address, or URL."""
    if channel.kind == "phone":
        number = parse_valid(channel.phone, channel.region or region)
        return canonical(e164(number), number.extension) if number else channel.phone
    if channel.kind in ("web", "chat", "social"):
        return normalise_url(channel.url)
    if channel.kind == "email":
        return canonical_email(channel.contact) or channel.contact
    return channel.contact


def find_drift(registry: Registry, scans: Mapping[SourceKey, ProbeResult]) -> list[Finding]:
    """Every finding for the sources in `scans`, sorted."""
    findings: list[Finding] = []
    for org in registry.organizations:
        for source in org.sources:
            scan = scans.get((org.id, source.id))
            if scan is None:
                continue
            if not scan.success or scan.contacts is None:
                evidence = f"{scan.reason}: {scan.message}" if scan.message else scan.reason
                findings.append(Finding("source_unreachable", org.id, source.id, evidence=evidence))
                continue
            complete = not scan.details.get("truncated")  # read to its end
            findings += _page_findings(
                org, source.id, scan.contacts, registry.defaults.region, complete
            )
    return sorted(findings, key=Finding.sort_key)


def _page_findings(
    org: Organization, source: str, page: Contacts, region: str, complete: bool = True
) -> list[Finding]:
    """Findings of one scanned page; `complete` false (only the page's first
    `max_body_bytes` were read) raises no `active_missing`: the contact may come later."""
    phones, emails = _index(org, region)
    found: list[Finding] = []
    for phone in page.phones:
        matches = [k for k in phones.get(phone.e164, []) if _same_extension(k, phone.extension)]
        contact = canonical(phone.e164, phone.extension)
        found += _published(org.id, source, [k.channel for k in matches], contact, phone.raw)
    for email in page.emails:
        channels = [emails[email.address]] if email.address in emails else []
        found += _published(org.id, source, channels, email.address, email.raw)
    for channel in org.channels:
        if (
            complete
            and channel.status == "active"
            and source in channel.published_on
            and not _shows(page, channel, region)
        ):
            found.append(
                Finding("active_missing", org.id, source, channel.id, contact_key(channel, region))
            )
    return found


def _published(
    org: str, source: str, channels: list[Channel], contact: str, raw: str
) -> Iterator[Finding]:
    if not channels:
        yield Finding("unregistered_published", org, source, None, contact, raw)
    for channel in channels:
        if channel.status == "deprecated":
            yield Finding("deprecated_published", org, source, channel.id, contact, raw)


def _index(org: Organization, region: str) -> tuple[dict[str, list[_Known]], dict[str, Channel]]:
    phones: dict[str, list[_Known]] = {}
    emails: dict[str, Channel] = {}
    for channel in org.channels:
        if channel.kind == "phone":
            e164, _, extension = contact_key(channel, region).partition(";ext=")
            phones.setdefault(e164, []).append(_Known(channel, e164, extension or None))
        elif channel.kind == "email":
            emails[contact_key(channel, region)] = channel
    return phones, emails


def _same_extension(known: _Known, shown: str | None) -> bool:
    """Phones are the same contact only with the same extension (DESIGN, "Drift: when two
    contacts are the same"): the number without one is the line's main number."""
    return known.extension == shown


def _shows(page: Contacts, channel: Channel, region: str) -> bool:
    if channel.kind == "phone":
        e164, _, extension = contact_key(channel, region).partition(";ext=")
        known = _Known(channel, e164, extension or None)
        return any(p.e164 == e164 and _same_extension(known, p.extension) for p in page.phones)
    if channel.kind == "email":
        return any(e.address == contact_key(channel, region) for e in page.emails)
    if channel.kind in ("web", "chat", "social"):
        return normalise_url(channel.url) in page.links
    return True  # a tcp endpoint is not something a page publishes
