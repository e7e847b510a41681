"""The HTTP prober against real HTTP and HTTPS servers on loopback."""

from __future__ import annotations

import time
from typing import Any

import pytest
from servers import HttpServer, RawTcpServer, page, redirect

from monitor.config import WebChannel
from monitor.probers import ProbeContext, probe_http


def web(url: str, **expect: Any) -> WebChannel:
    return WebChannel.model_validate({"id": "site", "kind": "web", "url": url, "expect": expect})


async def test_success_when_status_and_body_match(http_server: HttpServer, ctx: ProbeContext):
    """A 200 whose body matches body_regex is a success with its status code."""
    http_server.routes["/"] = page("<p>Сообщения</p>")
    result = await probe_http(web(http_server.url(), body_regex="Сообщения"), ctx)
    assert result.success, result
    assert result.details["status_code"] == 200


async def test_phases_are_timed_when_probe_runs_over_https(
    https_server: HttpServer, ctx: ProbeContext
):
    """Connect, TLS, server and transfer phases each get a duration."""
    https_server.routes["/"] = page("ok")
    result = await probe_http(web(https_server.url()), ctx)
    assert result.success, result
    assert {"connect", "tls", "server", "transfer"} <= set(result.details["phases"])
    assert result.duration_seconds > 0


async def test_http_status_when_status_is_not_expected(http_server: HttpServer, ctx: ProbeContext):
    """A 503 fails with reason http_status when 200 is expected."""
    http_server.routes["/"] = page("down", status=503)
    result = await probe_http(web(http_server.url()), ctx)
    assert (result.success, result.reason) == (False, "http_status")
    assert result.details["status_code"] == 503


async def test_body_mismatch_when_regex_is_absent(http_server: HttpServer, ctx: ProbeContext):
    """A body without the expected text fails with body_mismatch."""
    http_server.routes["/"] = page("<p>maintenance</p>")
    result = await probe_http(web(http_server.url(), body_regex="Сообщения"), ctx)
    assert result.reason == "body_mismatch"


async def test_body_forbidden_when_forbidden_text_is_present(
    http_server: HttpServer, ctx: ProbeContext
):
    """A body that matches body_not_regex fails with body_forbidden."""
    http_server.routes["/"] = page("<p>Service unavailable</p>")
    result = await probe_http(web(http_server.url(), body_not_regex="unavailable"), ctx)
    assert result.reason == "body_forbidden"


async def test_redirect_followed_when_location_is_given(http_server: HttpServer, ctx: ProbeContext):
    """Redirects are followed and counted; the final URL is reported."""
    http_server.routes["/old"] = redirect("/new")
    http_server.routes["/new"] = page("here")
    result = await probe_http(web(http_server.url("/old")), ctx)
    assert result.success, result
    assert result.details["redirects"] == 1
    assert result.details["final_url"].endswith("/new")


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("javascript:alert(1)", "redirect_scheme"),
        ("file:///etc/passwd", "redirect_scheme"),
        ("http://a.test:abc/", "redirect_invalid"),
    ],
)
async def test_redirect_refused_when_location_is_hostile(
    http_server: HttpServer, ctx: ProbeContext, location: str, reason: str
):
    """A Location that is not an http(s) URL ends the probe with a reason, never an error."""
    http_server.routes["/"] = redirect(location)
    result = await probe_http(web(http_server.url()), ctx)
    assert (result.success, result.reason) == (False, reason)


async def test_too_many_redirects_when_chain_exceeds_limit(
    http_server: HttpServer, ctx: ProbeContext
):
    """A chain longer than max_redirects fails with too_many_redirects."""
    for i in range(4):
        http_server.routes[f"/{i}"] = redirect(f"/{i + 1}")
    result = await probe_http(web(http_server.url("/0"), max_redirects=2), ctx)
    assert result.reason == "too_many_redirects"


async def test_cert_days_reported_when_certificate_is_trusted(
    https_server: HttpServer, ctx: ProbeContext
):
    """A certificate from the configured CA is trusted and its expiry reported."""
    https_server.routes["/"] = page("ok")
    result = await probe_http(web(https_server.url(), cert_min_days=14), ctx)
    assert result.success, result
    assert result.details["cert_days_left"] > 14
    assert result.details["cert_not_after"] > time.time()


async def test_tls_expiring_when_fewer_days_left_than_required(
    soon_expiring_https_server: HttpServer, ctx: ProbeContext
):
    """A certificate expiring within cert_min_days fails with tls_expiring."""
    soon_expiring_https_server.routes["/"] = page("ok")
    result = await probe_http(web(soon_expiring_https_server.url(), cert_min_days=14), ctx)
    assert result.reason == "tls_expiring"
    assert 2 < result.details["cert_days_left"] < 4


async def test_tls_expired_when_certificate_is_past_its_date(
    expired_https_server: HttpServer, ctx: ProbeContext
):
    """An expired certificate fails with tls_expired."""
    result = await probe_http(web(expired_https_server.url()), ctx)
    assert result.reason == "tls_expired"


async def test_tls_hostname_mismatch_when_certificate_names_another_host(
    wrong_host_https_server: HttpServer, ctx: ProbeContext
):
    """A certificate for another name fails with tls_hostname_mismatch."""
    result = await probe_http(web(wrong_host_https_server.url()), ctx)
    assert result.reason == "tls_hostname_mismatch"


async def test_tls_untrusted_when_ca_is_not_configured(https_server: HttpServer):
    """Without the test CA, the same server's certificate is untrusted."""
    from pathlib import Path

    from monitor.config import Defaults
    from monitor.probers import probe_context

    async with probe_context(Defaults(timeout=2), Path("/")) as plain_ctx:
        result = await probe_http(web(https_server.url()), plain_ctx)
    assert result.reason == "tls_untrusted"


async def test_connect_refused_when_nothing_listens(closed_port: int, ctx: ProbeContext):
    """A closed port fails with connect_refused."""
    result = await probe_http(web(f"http://127.0.0.1:{closed_port}/"), ctx)
    assert result.reason == "connect_refused"


async def test_timeout_when_server_never_answers(silent_server: RawTcpServer, ctx: ProbeContext):
    """A server that accepts and stays silent ends the probe at its timeout."""
    channel = WebChannel.model_validate(
        {
            "id": "s",
            "kind": "web",
            "timeout": "0.5s",
            "url": f"http://127.0.0.1:{silent_server.port}/",
        }
    )
    started = time.monotonic()
    result = await probe_http(channel, ctx)
    assert result.reason == "timeout"
    assert time.monotonic() - started < 1.5


async def test_slow_when_answer_exceeds_max_latency(http_server: HttpServer, ctx: ProbeContext):
    """An answer slower than max_latency fails with reason slow."""

    def slow(handler: Any) -> None:
        time.sleep(0.3)
        page("late")(handler)

    http_server.routes["/"] = slow
    result = await probe_http(web(http_server.url(), max_latency="100ms"), ctx)
    assert result.reason == "slow"


@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH_9.6\r\n", b"\x00\x01\x02garbage\r\n\r\n"])
async def test_http_protocol_when_server_speaks_something_else(
    raw_server: Any, ctx: ProbeContext, garbage: bytes
):
    """A peer that answers with non-HTTP bytes fails with http_protocol."""
    server = raw_server(lambda conn: (conn.recv(1024), conn.sendall(garbage)))
    result = await probe_http(web(f"http://127.0.0.1:{server.port}/"), ctx)
    assert result.reason == "http_protocol"


async def test_success_when_host_is_a_name_not_an_address(
    http_server: HttpServer, ctx: ProbeContext
):
    """A host given by name is resolved and its addresses raced (Happy Eyeballs), where an
    address literal is connected to directly."""
    http_server.routes["/"] = page("<p>ok</p>")
    result = await probe_http(web(http_server.url("/", host="localhost")), ctx)
    assert result.success, result
