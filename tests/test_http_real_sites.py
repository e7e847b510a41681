"""What real sites do, each on a real loopback server, judged through `check --format json`:
cookies across hops, headers, proxies, content codings, redirects not followed, odd
Locations, trailing-dot hosts, WHATWG charsets, certificate chains, malformed headers."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import socket
import ssl
import time
import zlib
from pathlib import Path
from typing import Any

import brotli
import pytest
import trustme
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import ForwardProxy, HttpServer, page, raw_headers, redirect

from monitor.cli import main


@pytest.fixture(autouse=True)
def no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy settings must not leak into these tests."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def check(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    channel: dict[str, Any],
    **defaults: Any,
) -> dict[str, Any]:
    """`check --format json` on a one-channel registry; the channel's result."""
    registry = {
        "version": 1,
        "defaults": {"timeout": "3s", **defaults},
        "organizations": [{"id": "acme", "channels": [{"id": "site", "kind": "web", **channel}]}],
    }
    path = tmp_path / "registry.yaml"
    path.write_text(json.dumps(registry))  # JSON is YAML
    code = main(["check", "--config", str(path), "--format", "json"])
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert code == (0 if result["success"] else 1), result
    return result


# --- cookies ------------------------------------------------------------------------------


def session_gate(handler: Any) -> None:
    """302 to itself with a session cookie until the cookie comes back, then 200."""
    if "session=abc" in handler.headers.get("Cookie", ""):
        page("<p>welcome</p>")(handler)
    else:
        page(b"", 302, headers={"Location": "/", "Set-Cookie": "session=abc; Path=/"})(handler)


def test_success_when_site_redirects_to_itself_setting_a_cookie(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A 302-to-itself with Set-Cookie, then 200 with the cookie: the site is up."""
    http_server.routes["/"] = session_gate
    result = check(tmp_path, capsys, {"url": http_server.url()})
    assert (result["success"], result["details"]["redirects"]) == (True, 1), result


def test_cookies_not_shared_when_probed_twice(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A second probe starts without the cookie the first one was given."""
    http_server.routes["/"] = session_gate
    check(tmp_path, capsys, {"url": http_server.url()})
    check(tmp_path, capsys, {"url": http_server.url()})
    first_requests = [h.get("Cookie") for _, h in http_server.received]
    assert first_requests == [None, "session=abc", None, "session=abc"]


# --- headers ------------------------------------------------------------------------------


def test_default_user_agent_sent_when_none_is_configured(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The default User-Agent names us and looks like a browser's to bot filters."""

    def bot_filter(handler: Any) -> None:
        agent = handler.headers.get("User-Agent", "")
        page("ok" if agent.startswith("Mozilla/5.0") else "bots go away", 200 if agent else 403)(
            handler
        )

    http_server.routes["/"] = bot_filter
    result = check(tmp_path, capsys, {"url": http_server.url(), "expect": {"body_regex": "^ok$"}})
    assert result["success"], result
    agent = http_server.received[0][1]["User-Agent"]
    assert agent == "Mozilla/5.0 (compatible; contact-monitor)"


def test_channel_headers_merged_over_defaults_when_both_are_set(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """defaults.http.headers go with every probe; a channel's own replace them by name,
    whatever the case of the name."""
    http_server.routes["/"] = page("ok")
    channel = {"url": http_server.url(), "headers": {"accept-language": "ru", "X-Probe": "1"}}
    defaults = {"http": {"headers": {"Accept-Language": "en", "User-Agent": "Ops/1.0"}}}
    result = check(tmp_path, capsys, channel, **defaults)
    assert result["success"], result
    headers = {k.lower(): v for k, v in http_server.received[0][1].items()}
    assert (headers["accept-language"], headers["x-probe"], headers["user-agent"]) == (
        "ru",
        "1",
        "Ops/1.0",
    )


# --- proxies ------------------------------------------------------------------------------


def test_http_probe_goes_through_proxy_when_channel_names_one(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A plain HTTP URL is asked of the proxy in absolute form."""
    http_server.routes["/"] = page("ok")
    with ForwardProxy() as proxy:
        result = check(tmp_path, capsys, {"url": http_server.url(), "proxy": proxy.url})
    assert result["success"], result
    assert proxy.requests == [f"GET {http_server.url()} HTTP/1.1"]


def test_https_probe_tunnels_through_proxy_when_defaults_name_one(
    https_server: HttpServer, ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """An HTTPS URL goes through a CONNECT tunnel; the certificate is still the site's."""
    https_server.routes["/"] = page("ok")
    with ForwardProxy() as proxy:
        result = check(
            tmp_path,
            capsys,
            {"url": https_server.url(), "expect": {"cert_min_days": 1}},
            http={"proxy": proxy.url},
            tls={"ca_file": str(ca_file)},
        )
    assert result["success"], result
    assert proxy.requests == [f"CONNECT 127.0.0.1:{https_server.port} HTTP/1.1"]
    assert result["details"]["cert_days_left"] > 1


def test_proxy_from_environment_when_registry_names_none(
    http_server: HttpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    """HTTP_PROXY applies when the registry is silent; NO_PROXY exempts a host."""
    http_server.routes["/"] = page("ok")
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert check(tmp_path, capsys, {"url": http_server.url()})["success"]
        assert len(proxy.requests) == 1
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert check(tmp_path, capsys, {"url": http_server.url()})["success"]
        assert len(proxy.requests) == 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_auth_when_proxy_wants_credentials(
    scheme: str,
    http_server: HttpServer,
    https_server: HttpServer,
    ca_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """A 407 from the proxy is proxy_auth, for a forwarded GET and for a CONNECT alike;
    with the credentials in the proxy URL the same probe succeeds."""
    server = http_server if scheme == "http" else https_server
    server.routes["/"] = page("ok")
    tls = {"ca_file": str(ca_file)}
    with ForwardProxy(credentials="ops:s3cret") as proxy:
        refused = check(tmp_path, capsys, {"url": server.url(), "proxy": proxy.url}, tls=tls)
        authorised = proxy.url.replace("http://", "http://ops:s3cret@")
        accepted = check(tmp_path, capsys, {"url": server.url(), "proxy": authorised}, tls=tls)
    assert (refused["success"], refused["reason"]) == (False, "proxy_auth"), refused
    assert accepted["success"], accepted


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_refused_when_nothing_listens_at_the_proxy(
    scheme: str, closed_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A proxy that refuses the connection is proxy_refused, not the site's connect_refused."""
    proxy = f"http://127.0.0.1:{closed_port}"
    result = check(tmp_path, capsys, {"url": f"{scheme}://127.0.0.1:9/", "proxy": proxy})
    assert (result["success"], result["reason"]) == (False, "proxy_refused"), result


# --- content codings ------------------------------------------------------------------------

TEXT = "<p>Сообщения</p>".encode()
CODINGS = {
    "br": brotli.compress(TEXT),
    "zstd": zstandard.ZstdCompressor().compress(TEXT),
    "deflate": zlib.compress(TEXT)[2:-4],  # raw deflate, without the zlib header
    "gzip, identity": gzip.compress(TEXT),
    "deflate, gzip": gzip.compress(zlib.compress(TEXT)),
}


@pytest.mark.parametrize("coding", list(CODINGS))
def test_body_decoded_when_content_coding_is_one_browsers_take(
    coding: str, http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """br, zstd, raw deflate and coding lists are undone before the body regex runs."""
    http_server.routes["/"] = page(CODINGS[coding], headers={"Content-Encoding": coding})
    channel = {"url": http_server.url(), "expect": {"body_regex": "Сообщения"}}
    result = check(tmp_path, capsys, channel)
    assert result["success"], result


def test_status_only_check_succeeds_when_body_coding_is_unknown(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A channel that checks only the status never reads the body's coding."""
    http_server.routes["/"] = page(b"\x00garbage", headers={"Content-Encoding": "snappy"})
    result = check(tmp_path, capsys, {"url": http_server.url()})
    assert result["success"], result


def test_too_large_when_brotli_bomb_expands_past_cap(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """64 MB of zeros in a few kB of brotli stops at the cap."""
    bomb = brotli.compress(b"\0" * (64 * 1024 * 1024))
    http_server.routes["/"] = page(bomb, headers={"Content-Encoding": "br"})
    channel = {"url": http_server.url(), "expect": {"body_regex": "x"}}
    result = check(tmp_path, capsys, channel)
    assert result["reason"] == "too_large", result
    assert result["details"]["body_bytes_read"] <= 1024 * 1024 + 1


# --- redirects not followed, odd Locations --------------------------------------------------


@pytest.mark.parametrize("setting", [{"follow_redirects": False}, {"max_redirects": 0}])
def test_first_answer_checked_when_redirects_are_not_followed(
    setting: dict[str, Any],
    http_server: HttpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """With follow_redirects false (or max_redirects 0) the 301 is the answer, its Location
    checked by location_regex."""
    http_server.routes["/"] = redirect("https://new.example.org/contacts", 301)
    expect = {"status": [301], "location_regex": r"^https://new\.example\.org/"}
    channel = {"url": http_server.url(), "expect": expect}
    if "follow_redirects" in setting:
        channel.update(setting)
    else:
        expect.update(setting)
    result = check(tmp_path, capsys, channel)
    assert result["success"], result
    assert result["details"]["location"] == "https://new.example.org/contacts"
    assert http_server.requests == ["/"]


def test_location_mismatch_when_redirect_goes_elsewhere(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A redirect to another place than location_regex says fails with location_mismatch."""
    http_server.routes["/"] = redirect("https://parked.example.net/", 301)
    channel = {
        "url": http_server.url(),
        "follow_redirects": False,
        "expect": {"status": [301], "location_regex": r"^https://new\.example\.org/"},
    }
    result = check(tmp_path, capsys, channel)
    assert (result["success"], result["reason"]) == (False, "location_mismatch"), result


def test_redirect_followed_when_same_location_is_sent_twice(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Two identical Location headers are one location."""
    http_server.routes["/"] = raw_headers(302, [("Location", b"/new"), ("Location", b"/new")])
    http_server.routes["/new"] = page("ok")
    result = check(tmp_path, capsys, {"url": http_server.url()})
    assert result["success"], result
    assert result["details"]["final_url"].endswith("/new")


def test_redirect_invalid_when_two_different_locations_are_sent(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Two different Location headers are ambiguous: refused as browsers refuse them."""
    http_server.routes["/"] = raw_headers(302, [("Location", b"/a"), ("Location", b"/b")])
    result = check(tmp_path, capsys, {"url": http_server.url()})
    assert result["reason"] == "redirect_invalid", result


def test_redirect_followed_when_location_is_raw_utf8(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A Location in raw UTF-8 bytes is followed percent-encoded, as a browser does."""
    http_server.routes["/"] = raw_headers(302, [("Location", "/контакты?q=да".encode())])
    target = "/%D0%BA%D0%BE%D0%BD%D1%82%D0%B0%D0%BA%D1%82%D1%8B"
    http_server.routes[target] = page("ok")
    result = check(tmp_path, capsys, {"url": http_server.url()})
    assert result["success"], result
    assert http_server.requests[-1] == target + "?q=%D0%B4%D0%B0"


# --- host names -----------------------------------------------------------------------------


def test_success_when_host_has_a_trailing_dot(
    https_server: HttpServer, ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`localhost.` is `localhost` for SNI, Host and the certificate check."""
    https_server.routes["/"] = page("ok")
    url = https_server.url(host="localhost.")
    result = check(tmp_path, capsys, {"url": url}, tls={"ca_file": str(ca_file)})
    assert result["success"], result
    assert https_server.received[0][1]["Host"] == f"localhost:{https_server.port}"


def test_validate_refuses_host_when_it_is_not_valid_idna2008(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A host name IDNA2008 forbids (a symbol) is a registry error, not a probe `error`."""
    path = tmp_path / "registry.yaml"
    channel = {"id": "site", "kind": "web", "url": "https://☃.example.org/"}
    path.write_text(
        json.dumps({"version": 1, "organizations": [{"id": "a", "channels": [channel]}]})
    )
    assert main(["validate", "--config", str(path)]) == 2
    assert "'☃.example.org' is not a valid host name" in capsys.readouterr().err


# --- charsets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "text", "codec"),
    [("iso-8859-1", "Цена: 5 €", "cp1252"), ("gb2312", "啰嗦", "gbk"), ("us-ascii", "€", "cp1252")],
)
def test_body_regex_sees_text_when_charset_label_means_another_encoding(
    label: str,
    text: str,
    codec: str,
    http_server: HttpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """WHATWG labels: iso-8859-1 and us-ascii are windows-1252, gb2312 is GBK."""
    body = text.encode(codec, errors="ignore") if codec == "cp1252" else text.encode(codec)
    content_type = f"text/html; charset={label}"
    http_server.routes["/"] = page(body, content_type=content_type)
    pattern = text if codec != "cp1252" else "€"
    result = check(tmp_path, capsys, {"url": http_server.url(), "expect": {"body_regex": pattern}})
    assert result["success"], result


# --- certificate chains ---------------------------------------------------------------------


def chain_server_context(ca: trustme.CA, intermediate_days: float, leaf_days: float) -> Any:
    """A server presenting leaf + intermediate, the intermediate signed by `ca`."""
    now = datetime.datetime.now(datetime.UTC)
    root_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    root = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    mid_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    mid_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Intermediate")])
    mid = (
        x509.CertificateBuilder()
        .subject_name(mid_name)
        .issuer_name(root.subject)
        .public_key(mid_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=intermediate_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(mid_name)
        .public_key(leaf_key.public_key())
        .serial_number(4242)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=leaf_days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(mid_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return leaf.public_bytes(pem) + mid.public_bytes(pem), key_pem, leaf


def test_tls_expiring_when_intermediate_expires_before_leaf(
    ca: trustme.CA, ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The expiry is the chain's earliest notAfter: an intermediate lapsing in 5 days fails
    cert_min_days 14 though the leaf has 300 days; the leaf's identity is reported."""
    chain_pem, key_pem, leaf = chain_server_context(ca, intermediate_days=5, leaf_days=300)
    (tmp_path / "chain.pem").write_bytes(chain_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    with HttpServer(routes={"/": page("ok")}, tls=context) as server:
        channel = {"url": server.url(), "expect": {"cert_min_days": 14}}
        result = check(tmp_path, capsys, channel, tls={"ca_file": str(ca_file)})
    assert result["reason"] == "tls_expiring", result
    details = result["details"]
    assert 4 < details["cert_days_left"] < 6
    assert details["tls_chain_length"] == 2
    assert details["tls_leaf"]["serial"] == "1092"  # 4242 in hex, as OpenSSL prints it
    assert details["tls_leaf"]["subject"] == "CN=127.0.0.1"
    assert details["tls_leaf"]["issuer"] == "CN=Test Intermediate"
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
    assert details["tls_leaf"]["fingerprint_sha256"] == fingerprint
    assert details["cert_not_after"] < time.time() + 6 * 86400


# --- malformed and oversized heads ----------------------------------------------------------


@pytest.mark.parametrize(
    "line", [b"X-Broken header without colon", b"X-Spaced : value"], ids=["no-colon", "space"]
)
def test_http_malformed_header_when_a_header_line_is_invalid(
    line: bytes, raw_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """httpx refuses header lines browsers read past; the reason says so, with the line."""

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 2\r\n\r\nok")

    server = raw_server(answer)
    result = check(tmp_path, capsys, {"url": f"http://127.0.0.1:{server.port}/"})
    assert result["reason"] == "http_malformed_header", result
    assert line.decode() in result["message"]


@pytest.mark.parametrize("segment", [None, 1000], ids=["one-write", "1000-byte-segments"])
def test_http_protocol_when_head_is_over_limit_however_it_is_segmented(
    segment: int | None, raw_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A 110 kB head fails the same way whether it comes in one write or in small pieces."""
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 110_000 + b"\r\nContent-Length: 2\r\n\r\nok"

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if segment is None:
            conn.sendall(head)
            return
        for i in range(0, len(head), segment):
            conn.sendall(head[i : i + segment])
            time.sleep(0.0005)

    server = raw_server(answer)
    result = check(tmp_path, capsys, {"url": f"http://127.0.0.1:{server.port}/"})
    assert (result["reason"], result["message"]) == (
        "http_protocol",
        "response head larger than 100 KiB",
    ), result
