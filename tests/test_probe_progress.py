"""A failed probe keeps what it learned: the phase reached, the hops followed, the MX host
tried, in its details and in the metrics."""

from __future__ import annotations

from typing import Any

from conftest import MAIL_DOMAIN, registry_with
from prometheus_client.parser import text_string_to_metric_families
from servers import HttpServer, RawTcpServer, page, redirect

from monitor.config import EmailChannel, WebChannel
from monitor.metrics import MonitorMetrics
from monitor.model import ProbeResult
from monitor.probers import ProbeContext, probe_http, probe_smtp
from monitor.state import State


def web(url: str, timeout: str = "2s") -> WebChannel:
    return WebChannel.model_validate({"id": "site", "kind": "web", "url": url, "timeout": timeout})


def samples(result: ProbeResult, channel: dict[str, Any]) -> dict[str, list[Any]]:
    """Every sample /metrics serves for `channel` once `result` is its latest probe."""
    state = State(registry_with([channel]))
    state.record_channel(("acme", channel["id"]), result)
    text = MonitorMetrics(state).render()[0].decode()
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append(s)
    return found


async def test_timeout_keeps_phase_and_hops_when_server_stalls_after_a_redirect(
    http_server: HttpServer, silent_server: RawTcpServer, ctx: ProbeContext
):
    """A probe that times out on its second hop says it got there, and how far it got."""
    http_server.routes["/"] = redirect(f"http://127.0.0.1:{silent_server.port}/")
    channel = {"id": "site", "kind": "web", "url": http_server.url(), "timeout": "0.5s"}
    result = await probe_http(web(http_server.url(), "0.5s"), ctx)
    assert result.reason == "timeout"
    details = result.details
    assert (details["redirects"], details["phase"]) == (1, "server")
    assert "stopped at server" in result.message
    assert {"connect", "request"} <= set(details["phases"])
    found = samples(result, channel)
    (phase,) = found["contact_probe_http_phase_info"]
    assert phase.labels["phase"] == "server"
    assert found["contact_probe_http_redirects"][0].value == 1


async def test_redirect_loop_keeps_hops_when_pages_point_at_each_other(
    http_server: HttpServer, ctx: ProbeContext
):
    """A loop still reports how many hops were followed and where it ended."""
    http_server.routes["/a"] = redirect("/b")
    http_server.routes["/b"] = redirect("/a")
    result = await probe_http(web(http_server.url("/a")), ctx)
    assert result.reason == "redirect_loop"
    assert result.details["redirects"] == 1
    assert result.details["url"].endswith("/b")


async def test_leaf_identity_exported_when_probe_is_https(
    https_server: HttpServer, ctx: ProbeContext
):
    """contact_probe_tls_chain_info carries the leaf's fingerprint, subject, issuer, serial."""
    https_server.routes["/"] = page("ok")
    result = await probe_http(web(https_server.url()), ctx)
    assert result.success, result
    channel = {"id": "site", "kind": "web", "url": https_server.url()}
    (info,) = samples(result, channel)["contact_probe_tls_chain_info"]
    assert set(info.labels) >= {"fingerprint_sha256", "subject", "issuer", "serial"}
    assert len(info.labels["fingerprint_sha256"]) == 64
    assert info.labels["issuer"]


async def test_smtp_timeout_keeps_host_and_stage_when_mx_never_greets(
    silent_server: RawTcpServer, ctx: ProbeContext
):
    """A mail server that never greets: the host, address and stage reached stay known."""
    channel = {
        "id": "m",
        "kind": "email",
        "email": f"x@{MAIL_DOMAIN}",
        "smtp": "connect",
        "smtp_port": silent_server.port,
        "timeout": "1s",
    }
    result = await probe_smtp(EmailChannel.model_validate(channel), ctx)
    assert result.reason == "timeout"
    details = result.details
    assert details["smtp_stage"] == "connect"  # connected, never greeted
    assert details["smtp_address"] == "127.0.0.1"
    assert [a["reason"] for a in details["smtp_attempts"]] == ["timeout", "timeout"]
    (host,) = samples(result, channel)["contact_probe_smtp_host_info"]
    assert host.labels["address"] == "127.0.0.1"
