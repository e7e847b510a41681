"""Scan of an official page: fetch it (capped) and extract the contacts it publishes."""

from __future__ import annotations

from monitor.charset import decode_page
from monitor.config import Source
from monitor.extract import extract_contacts, looks_like_html
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, guarded
from monitor.probers.http import fetch
from monitor.probers.rendered import scan_rendered_source

__all__ = ["probe_source", "source_region"]

MAX_REDIRECTS = 5


def source_region(source: Source, ctx: ProbeContext) -> str:
    return source.region or ctx.defaults.region


async def probe_source(source: Source, ctx: ProbeContext) -> ProbeResult:
    """Succeeds with `contacts` when the page answers 2xx; fails otherwise, with the reason.
    A `render: browser` source is read as the browser shows it (`probers.rendered`)."""
    if source.render == "browser":
        return await scan_rendered_source(source, ctx, source_region(source, ctx))
    return await _probe_static(source, ctx)


@guarded
async def _probe_static(source: Source, ctx: ProbeContext) -> ProbeResult:
    # A page past max_body_bytes is scanned on its first max_body_bytes: what is there is
    # published; what is not is not known to be missing (`truncated`, read by drift).
    page = await fetch(source.url, ctx, source.max_body_bytes, MAX_REDIRECTS, body="head")
    if not 200 <= page.status < 300:
        raise ProbeFailure("http_status", f"status {page.status}", status_code=page.status)
    content_type = page.headers.get("content-type")
    text = decode_page(page.body, content_type)
    contacts = extract_contacts(
        text,
        source_region(source, ctx),
        html=looks_like_html(text, content_type),
        base_url=page.url,
    )
    details = {
        "status_code": page.status,
        "body_bytes": len(page.body),
        "phones": len(contacts.phones),
        "emails": len(contacts.emails),
    }
    if page.body_truncated:
        details["truncated"] = True
    return ProbeResult(True, details=details, contacts=contacts)
