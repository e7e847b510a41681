"""HTTP edge cases against a loopback server: redirect loops, oversize and compressed
bodies, charsets, a peer that hangs up."""

from __future__ import annotations

import gzip
import socket
import ssl
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from servers import HttpServer, page, redirect

from monitor.config import Defaults, WebChannel
from monitor.probers import ProbeContext, probe_context, probe_http


@pytest.fixture
async def plain_ctx() -> ProbeContext:
    async with probe_context(Defaults(timeout=2), Path("/")) as context:
        yield context


def web(server: HttpServer, **expect: object) -> WebChannel:
    return WebChannel.model_validate(
        {"id": "portal", "kind": "web", "url": server.url("/"), "expect": expect}
    )


async def test_redirect_loop_when_location_points_back(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A redirect back to an URL already visited fails with redirect_loop."""
    http_server.routes["/"] = redirect("/login")
    http_server.routes["/login"] = redirect(http_server.url("/"))
    result = await probe_http(web(http_server), plain_ctx)
    assert result.reason == "redirect_loop"


async def test_redirect_scheme_when_location_is_not_http(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A redirect to a non-HTTP scheme is refused."""
    http_server.routes["/"] = redirect("file:///etc/passwd")
    result = await probe_http(web(http_server), plain_ctx)
    assert result.reason == "redirect_scheme"


@pytest.mark.parametrize(
    "location",
    ["http://[::1", "http://127.0.0.1:99999/"],
    ids=["not-an-url", "port-out-of-range"],
)
async def test_redirect_invalid_when_location_is_not_a_usable_url(
    http_server: HttpServer, plain_ctx: ProbeContext, location: str
):
    """A Location that is no URL, or names a port past 65535, is refused with its own reason
    before any connection is tried."""
    http_server.routes["/"] = redirect(location)
    result = await probe_http(web(http_server), plain_ctx)
    assert result.reason == "redirect_invalid"


async def test_too_large_when_body_exceeds_cap(http_server: HttpServer, plain_ctx: ProbeContext):
    """A body larger than max_body_bytes fails with too_large after reading at most the cap."""
    http_server.routes["/"] = page(b"x" * 5000)
    result = await probe_http(web(http_server, max_body_bytes=1000), plain_ctx)
    assert result.reason == "too_large"
    assert result.details["body_bytes_read"] <= 1001


async def test_up_when_status_only_check_meets_a_page_over_the_default_cap(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A healthy 1.5 MiB page checked for its status only is up: the body is read as far as
    the default cap and the rest left unread (no too_large nobody asked for)."""
    http_server.routes["/"] = page(b"x" * (3 * 2**19))
    result = await probe_http(web(http_server), plain_ctx)
    assert (result.success, result.details["body_truncated"]) == (True, True)


async def test_too_large_when_status_only_check_sets_max_body_bytes(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """An explicit max_body_bytes is an expectation even for a status-only check."""
    http_server.routes["/"] = page(b"x" * (3 * 2**19))
    result = await probe_http(web(http_server, max_body_bytes=2**20), plain_ctx)
    assert result.reason == "too_large"


async def test_too_large_when_body_regex_meets_a_page_over_the_default_cap(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A body regex needs the whole body: past the default cap it is too_large."""
    http_server.routes["/"] = page(b"x" * (3 * 2**19))
    result = await probe_http(web(http_server, body_regex="x"), plain_ctx)
    assert result.reason == "too_large"


async def test_gzip_body_decoded_when_content_encoding_is_gzip(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A gzip body is decompressed before the body regex is applied."""
    body = gzip.compress("<p>Сообщения</p>".encode())
    http_server.routes["/"] = page(body, headers={"Content-Encoding": "gzip"})
    result = await probe_http(web(http_server, body_regex="Сообщения"), plain_ctx)
    assert result.success, result


async def test_deflate_body_decoded_when_content_encoding_is_deflate(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A zlib-wrapped deflate body is decompressed too."""
    body = zlib.compress(b"hello deflate")
    http_server.routes["/"] = page(body, headers={"Content-Encoding": "deflate"})
    result = await probe_http(web(http_server, body_regex="hello"), plain_ctx)
    assert result.success, result


async def test_too_large_when_gzip_bomb_expands_past_cap(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """20 MB of zeros in ~20 KB of gzip stops at the cap, never inflating it all."""
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 40_000
    http_server.routes["/"] = page(bomb, headers={"Content-Encoding": "gzip"})
    channel = web(http_server, max_body_bytes=1024 * 1024, body_regex="x")
    result = await probe_http(channel, plain_ctx)
    assert result.reason == "too_large"
    assert result.details["body_bytes_read"] <= 1024 * 1024 + 1


async def test_bad_encoding_when_gzip_is_corrupt(http_server: HttpServer, plain_ctx: ProbeContext):
    """A body that claims gzip but is not fails with bad_encoding when the body is checked."""
    http_server.routes["/"] = page(b"not gzip at all", headers={"Content-Encoding": "gzip"})
    result = await probe_http(web(http_server, body_regex="gzip"), plain_ctx)
    assert result.reason == "bad_encoding"


async def test_bad_encoding_when_encoding_is_unknown(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """A content-encoding we did not ask for fails with bad_encoding when the body is checked."""
    http_server.routes["/"] = page(b"...", headers={"Content-Encoding": "compress"})
    result = await probe_http(web(http_server, body_regex="x"), plain_ctx)
    assert result.reason == "bad_encoding"


async def test_failed_result_when_peer_hangs_up_before_answering(
    raw_server, plain_ctx: ProbeContext
):
    """A peer that closes the connection unanswered is a failed result, never an exception."""

    def hang_up(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.close()

    server = raw_server(hang_up)
    channel = WebChannel.model_validate(
        {"id": "portal", "kind": "web", "url": f"http://127.0.0.1:{server.port}/"}
    )
    result = await probe_http(channel, plain_ctx)
    assert (result.success, result.reason) == (False, "http_protocol")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "the server closed the connection without answering"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", 'without an HTTP status line: "SSH-2.0-OpenSSH_9.2\\r\\n"'),
        (b"<html>hi</html>", 'without an HTTP status line: "<html>hi</html>"'),  # HTTP/0.9
        (b"HTTP/1.1 200 OK\r\nServer: x", 'inside its response head: "HTTP/1.1 200 OK\\r\\nSe'),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
            "closed the connection inside the body: received 10 bytes, expected 100",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "closed the connection inside the body: incomplete chunked read",
        ),
    ],
    ids=["nothing", "ssh banner", "http/0.9 body", "half a head", "body cut", "chunks cut"],
)
async def test_message_says_what_came_when_answer_has_no_status_line(
    raw_server, plain_ctx: ProbeContext, answer: bytes, message: str
):
    """A peer that answers without a status line, or cuts its answer short, and closes: the
    reason is http_protocol and the message says what came (quoted), or that nothing did."""

    def reply(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(answer)
        conn.close()

    server = raw_server(reply)
    channel = WebChannel.model_validate(
        {"id": "portal", "kind": "web", "url": f"http://127.0.0.1:{server.port}/"}
    )
    result = await probe_http(channel, plain_ctx)
    assert result.reason == "http_protocol", result
    assert message in (result.message or ""), result.message


async def test_message_quotes_plain_text_when_tls_server_answers_without_status_line(
    raw_server, tls_localhost: ssl.SSLContext, ca_file: Path
):
    """Over TLS the quoted bytes are the server's decrypted answer, not the handshake."""

    def reply(conn: socket.socket) -> None:
        with tls_localhost.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"220 mail.acme.test ESMTP\r\n")

    server = raw_server(reply)
    channel = WebChannel.model_validate(
        {"id": "portal", "kind": "web", "url": f"https://localhost:{server.port}/"}
    )
    defaults = Defaults.model_validate({"timeout": "2s", "tls": {"ca_file": str(ca_file)}})
    async with probe_context(defaults, Path("/")) as ctx:
        result = await probe_http(channel, ctx)
    assert result.reason == "http_protocol", result
    assert 'without an HTTP status line: "220 mail.acme.test ESMTP\\r\\n"' in result.message


async def test_charset_from_header_when_page_is_windows_1251(
    http_server: HttpServer, plain_ctx: ProbeContext
):
    """The body regex sees text decoded with the charset the server declares."""
    http_server.routes["/"] = page(
        "Сообщения".encode("cp1251"), content_type="text/html; charset=windows-1251"
    )
    result = await probe_http(web(http_server, body_regex="Сообщения"), plain_ctx)
    assert result.success, result


@pytest.mark.parametrize(
    "cookie",
    [
        "a=b; Expires=Wed, 99 Foo 2099 99:99:99 GMT",
        "a=b; Expires=" + "9" * 500,
        "a=b; Max-Age=NaN; Domain=..",
    ],
    ids=["impossible date", "huge date", "odd max-age and domain"],
)
def test_unparsable_cookie_dropped_quietly_when_server_sets_it(
    http_server: HttpServer, tmp_path: Path, cookie: str
):
    """A Set-Cookie the cookie jar cannot read is dropped, as browsers drop it: `check`
    says up, and no warning with a traceback reaches its output (nor the daemon's log)."""
    http_server.routes["/"] = page(b"ok", headers={"Set-Cookie": cookie})
    registry = tmp_path / "r.yaml"
    registry.write_text(
        "version: 1\norganizations:\n  - id: acme\n    channels:\n"
        f"      - {{id: site, kind: web, url: '{http_server.url('/')}'}}\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(registry), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "cookiejar" not in run.stderr
