"""HTTP edge cases with respx: redirect loops, oversize and compressed bodies."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import httpx
import pytest
import respx

from monitor.config import Defaults, WebChannel
from monitor.probers import ProbeContext, probe_context, probe_http

URL = "https://portal.test/"


@pytest.fixture
async def plain_ctx() -> ProbeContext:
    async with probe_context(Defaults(timeout=2), Path("/")) as context:
        yield context


def raw(body: bytes, **headers: str) -> httpx.Response:
    """A response whose body is sent as is, not re-encoded by the mock."""
    names = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.Response(200, headers=names, stream=httpx.ByteStream(body))


def web(**expect: object) -> WebChannel:
    return WebChannel.model_validate({"id": "portal", "kind": "web", "url": URL, "expect": expect})


@respx.mock
async def test_redirect_loop_when_location_points_back(plain_ctx: ProbeContext):
    """A redirect back to an URL already visited fails with redirect_loop."""
    respx.get(URL).respond(302, headers={"Location": "/login"})
    respx.get(URL + "login").respond(302, headers={"Location": URL})
    result = await probe_http(web(), plain_ctx)
    assert result.reason == "redirect_loop"


@respx.mock
async def test_redirect_scheme_when_location_is_not_http(plain_ctx: ProbeContext):
    """A redirect to a non-HTTP scheme is refused."""
    respx.get(URL).respond(302, headers={"Location": "file:///etc/passwd"})
    result = await probe_http(web(), plain_ctx)
    assert result.reason == "redirect_scheme"


@respx.mock
async def test_too_large_when_body_exceeds_cap(plain_ctx: ProbeContext):
    """A body larger than max_body_bytes fails with too_large after reading at most the cap."""
    respx.get(URL).respond(200, content=b"x" * 5000)
    result = await probe_http(web(max_body_bytes=1000), plain_ctx)
    assert result.reason == "too_large"
    assert result.details["body_bytes_read"] <= 1001


@respx.mock
async def test_gzip_body_decoded_when_content_encoding_is_gzip(plain_ctx: ProbeContext):
    """A gzip body is decompressed before the body regex is applied."""
    body = gzip.compress("<p>Сообщения</p>".encode())
    respx.get(URL).mock(return_value=raw(body, Content_Encoding="gzip"))
    result = await probe_http(web(body_regex="Сообщения"), plain_ctx)
    assert result.success, result


@respx.mock
async def test_deflate_body_decoded_when_content_encoding_is_deflate(plain_ctx: ProbeContext):
    """A zlib-wrapped deflate body is decompressed too."""
    respx.get(URL).mock(
        return_value=raw(zlib.compress(b"hello deflate"), Content_Encoding="deflate")
    )
    result = await probe_http(web(body_regex="hello"), plain_ctx)
    assert result.success, result


@respx.mock
async def test_too_large_when_gzip_bomb_expands_past_cap(plain_ctx: ProbeContext):
    """20 MB of zeros in ~20 KB of gzip stops at the cap, never inflating it all."""
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 40_000
    respx.get(URL).mock(return_value=raw(bomb, Content_Encoding="gzip"))
    result = await probe_http(web(max_body_bytes=1024 * 1024), plain_ctx)
    assert result.reason == "too_large"
    assert result.details["body_bytes_read"] <= 1024 * 1024 + 1


@respx.mock
async def test_bad_encoding_when_gzip_is_corrupt(plain_ctx: ProbeContext):
    """A body that claims gzip but is not fails with bad_encoding."""
    respx.get(URL).mock(return_value=raw(b"not gzip at all", Content_Encoding="gzip"))
    result = await probe_http(web(), plain_ctx)
    assert result.reason == "bad_encoding"


@respx.mock
async def test_bad_encoding_when_encoding_is_unknown(plain_ctx: ProbeContext):
    """A content-encoding we did not ask for fails with bad_encoding."""
    respx.get(URL).mock(return_value=raw(b"...", Content_Encoding="zstd"))
    result = await probe_http(web(), plain_ctx)
    assert result.reason == "bad_encoding"


@respx.mock
async def test_connect_failed_when_transport_errors(plain_ctx: ProbeContext):
    """A transport error becomes a failed result, never an exception."""
    respx.get(URL).mock(side_effect=httpx.ConnectError("boom"))
    result = await probe_http(web(), plain_ctx)
    assert (result.success, result.reason) == (False, "connect_failed")


@respx.mock
async def test_charset_from_header_when_page_is_windows_1251(plain_ctx: ProbeContext):
    """The body regex sees text decoded with the charset the server declares."""
    respx.get(URL).respond(
        200,
        content="Сообщения".encode("cp1251"),
        headers={"Content-Type": "text/html; charset=windows-1251"},
    )
    result = await probe_http(web(body_regex="Сообщения"), plain_ctx)
    assert result.success, result
