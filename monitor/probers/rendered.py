"""Pages judged as a browser shows them (`render: browser`): web, chat and social channels,
and source pages whose contacts a script puts on the page.

A plain GET of such a page returns a script and perhaps a JSON state blob; the contacts a
visitor sees exist only after the script has run, so a static scan finds nothing there and
`drift` stays silent. Here the shared Chromium (`monitor.browser`) renders the page, and the
same rules as for static pages run on the result: the channel's `expect` on the main
document's status and the rendered text, and contact extraction on the rendered document.
"""

from __future__ import annotations

from monitor.browser import Judge, Rendered
from monitor.config import Source, WebChannel
from monitor.extract import extract_contacts
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, failure_from_exception
from monitor.probers._settings import proxy_for, request_headers
from monitor.probers.http import latency_or_certificate_failure, status_failure, text_failure
from monitor.redact import mask_password

__all__ = ["probe_rendered_page", "scan_rendered_source"]


async def probe_rendered_page(channel: WebChannel, ctx: ProbeContext) -> ProbeResult:
    """Render the channel's page; judge status, rendered text, latency and certificate."""

    def judge(rendered: Rendered) -> ProbeResult:
        _check_size(rendered, channel.expect.max_body_bytes)
        details = _details(rendered)
        failure = _expectation_failure(channel, rendered)
        if failure:
            return ProbeResult(False, failure[0], failure[1], details=details)
        return ProbeResult(True, details=details)

    return await _check(channel, ctx, judge, channel.expect.max_body_bytes)


async def scan_rendered_source(source: Source, ctx: ProbeContext, region: str) -> ProbeResult:
    """Render the source page; its contacts are extracted from the rendered document."""

    def judge(rendered: Rendered) -> ProbeResult:
        if not 200 <= rendered.status < 300:
            raise ProbeFailure(
                "http_status", f"status {rendered.status}", status_code=rendered.status
            )
        _check_size(rendered, source.max_body_bytes)
        contacts = extract_contacts(rendered.html, region, html=True, base_url=rendered.url)
        details = {
            **_details(rendered),
            "phones": len(contacts.phones),
            "emails": len(contacts.emails),
        }
        return ProbeResult(True, details=details, contacts=contacts)

    return await _check(source, ctx, judge, source.max_body_bytes)


async def _check(
    target: WebChannel | Source, ctx: ProbeContext, judge: Judge, max_bytes: int
) -> ProbeResult:
    if ctx.browser is None:
        return ProbeResult(False, "browser_unavailable", "no browser in this context")
    try:
        return await ctx.browser.check(
            target.url,
            judge,
            budget=ctx.timeout_for(target),
            headers=request_headers(target, ctx),
            proxy=proxy_for(target, ctx),
            guard=not ctx.defaults.allow_private_redirects,
            max_bytes=max_bytes,
        )
    except Exception as exc:  # noqa: BLE001 - a prober never raises
        reason, message = failure_from_exception(exc)
        return ProbeResult(False, reason, message)


def _check_size(rendered: Rendered, cap: int) -> None:
    size = len(rendered.html.encode("utf-8", "replace"))
    if size > cap:
        raise ProbeFailure("too_large", f"rendered document larger than {cap} bytes")


def _expectation_failure(channel: WebChannel, rendered: Rendered) -> tuple[str, str] | None:
    """The channel's `expect` applied to the rendered page, in the HTTP prober's order and
    with its reasons; the body is the text a visitor reads."""
    expect = channel.expect
    return (
        status_failure(expect, rendered.status)
        or text_failure(expect, rendered.text, "rendered text")
        or latency_or_certificate_failure(
            expect, rendered.elapsed, rendered.cert_not_after, "rendered"
        )
    )


def _details(rendered: Rendered) -> dict:
    details: dict = {
        "rendered": True,
        "status_code": rendered.status,
        "final_url": mask_password(rendered.url),
        "redirects": rendered.redirects,
        "body_bytes": len(rendered.html),
        "render_seconds": round(rendered.elapsed, 6),
    }
    if rendered.cert_not_after is not None:
        details["cert_not_after"] = rendered.cert_not_after
        details["tls_version"] = rendered.tls_version
    return details
