"""HTTP edge cases that need no socket: the prober against httpx mocked by respx."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import respx
import zstandard

from monitor.config import Defaults, WebChannel
from monitor.probers import ProbeContext, probe_context, probe_http

SITE = "https://portal.example.org"


@pytest.fixture
async def plain_ctx() -> AsyncIterator[ProbeContext]:
    async with probe_context(Defaults(timeout=2), Path("/")) as context:
        yield context


def web(url: str = SITE + "/", expect: dict[str, Any] | None = None, **fields: Any) -> WebChannel:
    return WebChannel.model_validate(
        {"id": "portal", "kind": "web", "url": url, "expect": expect or {}, **fields}
    )


@respx.mock
async def test_cookie_sent_on_next_hop_when_a_redirect_sets_it(plain_ctx: ProbeContext):
    """A cookie set with a redirect goes with the next request of the same probe."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(302, headers={"Location": "/home", "Set-Cookie": "s=1"})
    )
    home = respx.get(SITE + "/home").mock(return_value=httpx.Response(200, text="ok"))
    result = await probe_http(web(), plain_ctx)
    assert result.success, result
    assert home.calls.last.request.headers["cookie"] == "s=1"


@respx.mock
async def test_redirect_loop_when_cookie_no_longer_changes(plain_ctx: ProbeContext):
    """A page that keeps redirecting to itself with the same cookie is a loop."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(302, headers={"Location": "/", "Set-Cookie": "s=1"})
    )
    result = await probe_http(web(), plain_ctx)
    assert result.reason == "redirect_loop"


@respx.mock
@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("br", brotli.compress("Сообщения".encode())),
        ("zstd", zstandard.ZstdCompressor().compress("Сообщения".encode())),
        ("gzip, identity", gzip.compress("Сообщения".encode())),
        ("identity", "Сообщения".encode()),
    ],
)
async def test_body_regex_matches_when_body_is_coded(
    plain_ctx: ProbeContext, coding: str, body: bytes
):
    """Each coding a browser takes is undone before the body regex runs."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Encoding": coding})
    )
    result = await probe_http(web(expect={"body_regex": "Сообщения"}), plain_ctx)
    assert result.success, result


@respx.mock
async def test_bad_encoding_when_checked_body_has_an_unknown_coding(plain_ctx: ProbeContext):
    """A coding nobody can undo fails a body check with bad_encoding..."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(200, content=b"x", headers={"Content-Encoding": "lzma"})
    )
    result = await probe_http(web(expect={"body_regex": "x"}), plain_ctx)
    assert result.reason == "bad_encoding"


@respx.mock
async def test_success_when_status_only_check_meets_an_unknown_coding(plain_ctx: ProbeContext):
    """...and never a status-only check."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(200, content=b"x", headers={"Content-Encoding": "lzma"})
    )
    result = await probe_http(web(), plain_ctx)
    assert result.success, result


@respx.mock
async def test_redirect_not_followed_when_follow_redirects_is_false(plain_ctx: ProbeContext):
    """The 301 itself is checked; its Location is matched by location_regex."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(301, headers={"Location": "https://new.example.org/"})
    )
    expect = {"status": [301], "location_regex": "^https://new[.]example[.]org/$"}
    result = await probe_http(web(expect=expect, follow_redirects=False), plain_ctx)
    assert result.success, result
    assert result.details["redirects"] == 0


@respx.mock
async def test_location_mismatch_when_location_differs(plain_ctx: ProbeContext):
    """A Location other than the expected one fails with location_mismatch."""
    respx.get(SITE + "/").mock(
        return_value=httpx.Response(301, headers={"Location": "https://parked.example/"})
    )
    expect = {"status": [301], "location_regex": "^https://new[.]example[.]org/"}
    result = await probe_http(web(expect=expect, follow_redirects=False), plain_ctx)
    assert result.reason == "location_mismatch"


@respx.mock
async def test_headers_sent_when_defaults_and_channel_set_them(plain_ctx: ProbeContext):
    """The default User-Agent goes with every probe; a channel's headers add to it."""
    route = respx.get(SITE + "/").mock(return_value=httpx.Response(200))
    result = await probe_http(web(headers={"Accept-Language": "ru"}), plain_ctx)
    assert result.success, result
    sent = route.calls.last.request.headers
    assert sent["user-agent"] == "Mozilla/5.0 (compatible; contact-monitor)"
    assert sent["accept-language"] == "ru"


@respx.mock
async def test_host_sent_without_trailing_dot_when_url_has_one(plain_ctx: ProbeContext):
    """`portal.example.org.` is asked for as `portal.example.org`."""
    route = respx.get(SITE + "/").mock(return_value=httpx.Response(200))
    result = await probe_http(web("https://portal.example.org./"), plain_ctx)
    assert result.success, result
    assert route.calls.last.request.headers["host"] == "portal.example.org"


@respx.mock
async def test_idn_host_probed_when_name_is_valid_idna2008(plain_ctx: ProbeContext):
    """A Unicode host that IDNA2008 allows is asked for in its A-label form."""
    route = respx.get("https://xn--e1afmkfd.xn--p1ai/").mock(return_value=httpx.Response(200))
    result = await probe_http(web("https://пример.рф/"), plain_ctx)
    assert result.success, result
    assert route.called


@respx.mock
async def test_http_protocol_when_head_is_over_the_limit(plain_ctx: ProbeContext):
    """A head over 100 KiB is refused whatever delivered it."""
    respx.get(SITE + "/").mock(return_value=httpx.Response(200, headers={"X-Big": "a" * 110_000}))
    result = await probe_http(web(), plain_ctx)
    assert result.reason == "http_protocol"


@respx.mock
async def test_too_large_when_body_exceeds_cap(plain_ctx: ProbeContext):
    """A body over max_body_bytes fails with too_large, having read at most the cap + 1."""
    respx.get(SITE + "/").mock(return_value=httpx.Response(200, content=b"x" * 5000))
    result = await probe_http(web(expect={"max_body_bytes": 1000}), plain_ctx)
    assert result.reason == "too_large"
    assert result.details["body_bytes_read"] <= 1001
