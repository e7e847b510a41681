"""WebSocket probes (`ws://`, `wss://` channel URLs) against a real `websockets` server on
loopback, plain and TLS (a trustme CA)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import server_context
from servers import ForwardProxy
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from monitor.config import Defaults, WebChannel
from monitor.model import ProbeResult
from monitor.probers import ProbeContext, probe_channel, probe_context, probers_for

SEEN_HEADERS: list[dict[str, str]] = []
SEEN_PATHS: list[str] = []


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request else "/"
    if path == "/drop":  # the TCP connection ends with no close frame
        ws.transport.abort()
        return
    if path == "/close":
        await ws.close(4001, "chat backend restarting")
        return
    if path == "/huge":
        await ws.send("x" * (2 * 1024 * 1024))
    if path == "/greet":
        await ws.send('{"type":"welcome"}')
    async for message in ws:
        if path in ("/echo", "/greet"):
            await ws.send("pong" if message == '{"type":"ping"}' else message)
        elif path == "/wrong":
            await ws.send('{"type":"error","text":"unknown command"}')
        elif path == "/drop-after-send":
            ws.transport.abort()
            return
        # /silent: reads and never answers


def process_request(ws: ServerConnection, request: Request) -> Response | None:
    SEEN_HEADERS.append({k.lower(): v for k, v in request.headers.raw_items()})
    SEEN_PATHS.append(request.path)
    if request.path.startswith("/moved"):  # the chat moved; its handshake redirects
        response = ws.respond(HTTPStatus.FOUND, "")
        response.headers["Location"] = request.path.removeprefix("/moved") or "/echo"
        return response
    if request.path == "/forbidden":
        return ws.respond(HTTPStatus.FORBIDDEN, "no chat for you\n")
    if request.path == "/plain-page":  # a web server that ignores the Upgrade header
        return ws.respond(HTTPStatus.OK, "<html>chat</html>\n")
    return None


async def start(tls: ssl.SSLContext | None = None) -> Server:
    return await serve(
        handler,
        "127.0.0.1",
        0,
        ssl=tls,
        process_request=process_request,
        # chat.v1 when offered; a client offering none or another gets no subprotocol
        select_subprotocol=lambda ws, offered: "chat.v1" if "chat.v1" in offered else None,
        compression=None,
    )


@pytest.fixture
async def ws_server() -> AsyncIterator[str]:
    server = await start()
    yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def wss_server(tls_localhost: ssl.SSLContext) -> AsyncIterator[str]:
    server = await start(tls_localhost)
    yield f"wss://localhost:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def ws_ctx(ca_file: Path, tmp_path: Path) -> AsyncIterator[ProbeContext]:
    defaults = Defaults.model_validate({"timeout": "2s", "tls": {"ca_file": str(ca_file)}})
    async with probe_context(defaults, tmp_path) as context:
        yield context


def report(
    rows: list[dict[str, Any]], url: str, case: str, expected: str, result: ProbeResult
) -> None:
    """A row of build/hardening.md (area "WebSocket")."""
    scheme = url.partition(":")[0]
    rows.append(
        {
            "area": "WebSocket",
            "case": f"{scheme}: {case}",
            "expected": expected,
            "observed": result.reason or "success",
            "seconds": f"{result.duration_seconds:.2f}",
        }
    )


def chat(url: str, **expect: Any) -> WebChannel:
    return WebChannel.model_validate(
        {"id": "chat-backend", "kind": "chat", "url": url, "expect": expect}
    )


PING = {"send": '{"type":"ping"}', "receive_regex": "^pong$"}


@pytest.fixture(params=["ws", "wss"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_server")


def test_ws_urls_get_the_websocket_prober():
    """A ws:// or wss:// chat URL is probed as a WebSocket, not with a GET."""
    assert probers_for(chat("wss://chat.example.org/ws")) == ("websocket",)
    assert probers_for(chat("ws://chat.example.org/ws")) == ("websocket",)


async def test_echo_succeeds_when_reply_matches(backend: str, ws_ctx: ProbeContext):
    """Sent ping, got pong: the channel is up, with the handshake's facts."""
    result = await probe_channel(chat(backend + "/echo", **PING), ws_ctx)
    assert result.success, result
    assert result.details["status_code"] == 101
    assert result.details["reply"] == "pong"
    if backend.startswith("wss"):
        assert result.details["cert_days_left"] > 0
        assert result.details["tls_version"].startswith("TLS")


async def test_reply_after_a_greeting_still_counts(backend: str, ws_ctx: ProbeContext):
    """A welcome message before the reply is read past, not judged as the reply."""
    result = await probe_channel(chat(backend + "/greet", **PING), ws_ctx)
    assert result.success, result


async def test_wrong_reply_fails_ws_mismatch(
    backend: str, ws_ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """Messages came, none matched: `ws_mismatch`, with the first one as evidence."""
    result = await probe_channel(chat(backend + "/wrong", **PING), ws_ctx)
    report(hardening_report, backend, "wrong reply", "ws_mismatch", result)
    assert result.reason == "ws_mismatch", result
    assert "unknown command" in result.message


async def test_no_reply_fails_ws_no_reply(
    backend: str, ws_ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """Nothing within the timeout: `ws_no_reply`, not a bare `timeout`."""
    result = await probe_channel(chat(backend + "/silent", **PING), ws_ctx)
    report(hardening_report, backend, "no reply", "ws_no_reply", result)
    assert result.reason == "ws_no_reply", result
    assert result.duration_seconds < 3


@pytest.mark.parametrize(("path", "status"), [("/forbidden", 403), ("/plain-page", 200)])
async def test_refused_upgrade_fails_ws_handshake(
    path: str,
    status: int,
    backend: str,
    ws_ctx: ProbeContext,
    hardening_report: list[dict[str, Any]],
):
    """An HTTP answer other than 101 is `ws_handshake`, with the status kept."""
    result = await probe_channel(chat(backend + path, **PING), ws_ctx)
    report(hardening_report, backend, f"upgrade answered {status}", "ws_handshake", result)
    assert (result.reason, result.details["status_code"]) == ("ws_handshake", status)


async def test_redirected_handshake_fails_ws_handshake_without_following(
    backend: str, ws_ctx: ProbeContext
):
    """Browsers fail a WebSocket whose handshake redirects: the probe reports the redirect
    and its Location, and never opens the page it points to."""
    SEEN_PATHS.clear()
    result = await probe_channel(chat(backend + "/moved/echo", **PING), ws_ctx)
    assert result.reason == "ws_handshake", result
    assert result.details["status_code"] == 302
    assert "/echo" in result.message
    assert "browsers do not follow" in result.message
    assert SEEN_PATHS == ["/moved/echo"]


async def test_non_http_answer_fails_ws_handshake(ws_ctx: ProbeContext, raw_server: Any):
    """A peer that answers the upgrade with garbage is `ws_handshake`, not a traceback."""

    def garbage(conn: Any) -> None:
        conn.recv(65536)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    server = raw_server(garbage)
    result = await probe_channel(chat(f"ws://127.0.0.1:{server.port}/", **PING), ws_ctx)
    assert result.reason == "ws_handshake", result


async def test_oversized_message_fails_too_large(ws_server: str, ws_ctx: ProbeContext):
    """A message over `max_body_bytes` ends the probe with `too_large`, never held whole."""
    channel = chat(ws_server + "/huge", receive_regex="pong", max_body_bytes=65536)
    result = await probe_channel(channel, ws_ctx)
    assert result.reason == "too_large", result


@pytest.mark.parametrize("path", ["/drop", "/drop-after-send"])
async def test_abrupt_close_fails_ws_closed_with_1006(
    path: str, backend: str, ws_ctx: ProbeContext, hardening_report: list[dict[str, Any]]
):
    """A connection dropped without a close frame is `ws_closed`, close code 1006."""
    result = await probe_channel(chat(backend + path, **PING), ws_ctx)
    case = "dropped after the handshake" if path == "/drop" else "dropped on our message"
    report(hardening_report, backend, case, "ws_closed", result)
    assert (result.reason, result.details["close_code"]) == ("ws_closed", 1006), result


async def test_server_close_code_is_kept(backend: str, ws_ctx: ProbeContext):
    """A clean close by the server before the reply keeps its code and reason."""
    result = await probe_channel(chat(backend + "/close", **PING), ws_ctx)
    assert (result.reason, result.details["close_code"]) == ("ws_closed", 4001)
    assert "restarting" in result.message


async def test_handshake_only_when_nothing_to_send(ws_server: str, ws_ctx: ProbeContext):
    """Without `send`/`receive_regex` the handshake alone is the check."""
    result = await probe_channel(chat(ws_server + "/silent"), ws_ctx)
    assert result.success, result


async def test_subprotocol_must_be_chosen_by_the_server(ws_server: str, ws_ctx: ProbeContext):
    """The subprotocol asked for must be the one the server picks."""
    ok = await probe_channel(chat(ws_server + "/echo", subprotocol="chat.v1"), ws_ctx)
    assert (ok.success, ok.details["subprotocol"]) == (True, "chat.v1")
    refused = await probe_channel(chat(ws_server + "/echo", subprotocol="chat.v2"), ws_ctx)
    assert refused.reason == "ws_handshake"


async def test_channel_headers_are_sent_in_the_handshake(ws_server: str, ws_ctx: ProbeContext):
    """A channel's `headers` (User-Agent included) go with the upgrade request."""
    SEEN_HEADERS.clear()
    channel = WebChannel.model_validate(
        {
            "id": "c",
            "kind": "chat",
            "url": ws_server + "/echo",
            "headers": {"Origin": "https://www.example.org", "User-Agent": "probe/1"},
        }
    )
    assert (await probe_channel(channel, ws_ctx)).success
    assert SEEN_HEADERS[-1]["origin"] == "https://www.example.org"
    assert SEEN_HEADERS[-1]["user-agent"] == "probe/1"


async def test_ws_probe_tunnels_through_channel_proxy_when_defaults_name_another(
    ws_server: str, tmp_path: Path, closed_port: int
):
    """A channel's own `proxy` replaces `defaults.http.proxy` (here a dead one): the
    upgrade goes through the channel's proxy as a CONNECT tunnel."""
    dead = f"http://127.0.0.1:{closed_port}"
    defaults = Defaults.model_validate({"timeout": "2s", "http": {"proxy": dead}})
    with ForwardProxy() as proxy:
        channel = WebChannel.model_validate(
            {"id": "c", "kind": "chat", "url": ws_server + "/echo", "proxy": proxy.url}
        )
        async with probe_context(defaults, tmp_path) as ctx:
            result = await probe_channel(channel, ctx)
    assert result.success, result
    assert proxy.requests == [f"CONNECT {ws_server.removeprefix('ws://')} HTTP/1.1"]


async def test_connection_refused_is_connect_refused(ws_ctx: ProbeContext, closed_port: int):
    result = await probe_channel(chat(f"ws://127.0.0.1:{closed_port}/echo"), ws_ctx)
    assert result.reason == "connect_refused"


@pytest.mark.parametrize(
    ("make_cert", "reason"),
    [
        (lambda ca: trustme.CA().issue_cert("localhost"), "tls_untrusted"),
        (
            lambda ca: ca.issue_cert(
                "localhost",
                not_after=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1),
            ),
            "tls_expired",
        ),
        (lambda ca: ca.issue_cert("other.example"), "tls_hostname_mismatch"),
    ],
    ids=["untrusted", "expired", "wrong-host"],
)
async def test_wss_certificate_is_checked_as_for_https(
    make_cert: Any, reason: str, ca: trustme.CA, ws_ctx: ProbeContext
):
    """wss:// uses the shared SSL context: an untrusted, expired or foreign certificate fails."""
    server = await start(server_context(make_cert(ca)))
    try:
        port = server.sockets[0].getsockname()[1]
        result = await probe_channel(chat(f"wss://localhost:{port}/echo", **PING), ws_ctx)
    finally:
        server.close()
        await server.wait_closed()
    assert result.reason == reason, result


async def test_wss_cert_min_days_fails_tls_expiring(ca: trustme.CA, ws_ctx: ProbeContext):
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    server = await start(server_context(ca.issue_cert("localhost", not_after=soon)))
    try:
        port = server.sockets[0].getsockname()[1]
        channel = chat(f"wss://localhost:{port}/echo", cert_min_days=14)
        result = await probe_channel(channel, ws_ctx)
    finally:
        server.close()
        await server.wait_closed()
    assert result.reason == "tls_expiring"


def test_ws_url_settings_are_checked_at_load_time():
    """`render: browser` on a ws(s) URL, or `send` on an http(s) one, is a registry error."""
    with pytest.raises(ValueError, match="WebSocket"):
        chat("wss://chat.example.org/ws").model_validate(
            {"id": "c", "kind": "chat", "url": "wss://chat.example.org/ws", "render": "browser"}
        )
    with pytest.raises(ValueError, match="ws:// or wss://"):
        chat("https://example.org/", send="ping")


async def test_hung_handshake_ends_at_the_timeout(ws_ctx: ProbeContext, silent_server: Any):
    """A server that accepts and never answers the upgrade ends at the probe's timeout."""
    result = await probe_channel(chat(f"ws://127.0.0.1:{silent_server.port}/"), ws_ctx)
    assert result.reason == "timeout"
    await asyncio.sleep(0)


def test_request_headers_merge_channel_over_defaults_case_insensitively():
    """`defaults.http.headers` first, a channel's `headers` over them, names compared
    case-insensitively; the channel's own proxy wins over the default one."""
    from types import SimpleNamespace

    from monitor.probers._settings import proxy_for, request_headers

    http = SimpleNamespace(headers={"User-Agent": "default/1", "Accept": "*/*"}, proxy="http://p:1")
    ctx: Any = SimpleNamespace(defaults=SimpleNamespace(http=http))
    channel = SimpleNamespace(headers={"user-agent": "chat/2"}, proxy=None)
    assert request_headers(channel, ctx) == {"Accept": "*/*", "user-agent": "chat/2"}
    assert proxy_for(channel, ctx) == "http://p:1"
    assert proxy_for(SimpleNamespace(proxy="http://own:2"), ctx) == "http://own:2"
