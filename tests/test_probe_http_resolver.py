"""HTTP probes resolve host names with `defaults.resolver`, as the MX probe does (DESIGN:
"DNS servers to use instead of the system's"), against a real dnslib server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import server_context
from servers import DnsZone, ForwardProxy, HttpServer, free_port, page, redirect, running_dns

from monitor.cli import main
from monitor.config import Defaults
from monitor.probers import probe_context
from monitor.probers.http import is_internal_host

NAME = "acme-torg.ru"  # exists only in the test's DNS server


@pytest.fixture
def zone() -> DnsZone:
    return DnsZone(
        a={
            NAME: ["127.0.0.1"],
            "proxy.acme-torg.ru": ["127.0.0.1"],
            "v4.acme-torg.ru": [],
            "metadata.acme-torg.ru": ["169.254.169.254"],
        },
        aaaa={NAME: ["::1"]},  # nothing listens on ::1: the probe must go on to 127.0.0.1
        servfail={"broken.acme-torg.ru"},
        silent={"silent.acme-torg.ru"},
    )


@pytest.fixture
def dns(zone: DnsZone) -> Iterator[int]:
    with running_dns(zone) as port:
        yield port


def _check(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    channel: dict[str, Any],
    dns_port: int,
    **defaults: Any,
) -> dict[str, Any]:
    registry = {
        "version": 1,
        "defaults": {
            "timeout": "2s",
            "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port},
            **defaults,
        },
        "organizations": [{"id": "acme", "channels": [channel]}],
    }
    config = tmp_path / "registry.yaml"
    config.write_text(json.dumps(registry))
    main(["check", "--config", str(config), "--format", "json"])
    (result,) = json.loads(capsys.readouterr().out)["results"]
    return result


def _web(url: str) -> dict[str, Any]:
    return {"id": "site", "kind": "web", "url": url}


def test_http_probe_resolves_with_registry_resolver_when_name_is_unknown_to_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dns: int, zone: DnsZone
):
    with HttpServer({"/ok": page("hello")}) as server:
        result = _check(tmp_path, capsys, _web(server.url("/ok", host=NAME)), dns)
        assert result["success"], result
        assert (NAME, "A") in zone.queries
        (_, headers), *_ = server.received
        assert headers["Host"] == f"{NAME}:{server.port}"


def test_https_probe_sends_name_as_sni_when_resolved_by_registry_resolver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dns: int, ca: trustme.CA, ca_file: Path
):
    tls = server_context(ca.issue_cert(NAME))  # only valid when SNI/verification use NAME
    with HttpServer({"/ok": page("hello")}, tls=tls) as server:
        result = _check(
            tmp_path,
            capsys,
            _web(server.url("/ok", host=NAME)),
            dns,
            tls={"ca_file": str(ca_file)},
        )
    assert result["success"], result


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("missing.acme-torg.ru", "dns_nxdomain"),
        ("v4.acme-torg.ru", "dns_nxdomain"),  # the name exists, with no address
        ("broken.acme-torg.ru", "dns_servfail"),
        ("silent.acme-torg.ru", "dns_timeout"),
    ],
)
def test_http_probe_keeps_dns_reason_when_registry_resolver_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dns: int, host: str, reason: str
):
    result = _check(tmp_path, capsys, _web(f"http://{host}:{free_port()}/ok"), dns)
    assert (result["success"], result["reason"]) == (False, reason), result


def test_http_probe_says_dns_timeout_when_resolver_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    dead = free_port(kind=2)  # SOCK_DGRAM: nothing answers on this UDP port
    result = _check(tmp_path, capsys, _web(f"http://{NAME}:{free_port()}/ok"), dead)
    assert (result["success"], result["reason"]) == (False, "dns_timeout"), result


def test_mx_probe_says_dns_timeout_when_resolver_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    dead = free_port(kind=2)
    result = _check(tmp_path, capsys, {"id": "mail", "kind": "email", "email": "a@x.test"}, dead)
    assert (result["success"], result["reason"]) == (False, "dns_timeout"), result


async def test_name_is_internal_when_registry_resolver_maps_it_to_loopback(dns: int):
    """redirect_private judges the addresses the request will use: the registry resolver's."""
    defaults = Defaults.model_validate(
        {"timeout": "2s", "resolver": {"nameservers": ["127.0.0.1"], "port": dns}}
    )
    async with probe_context(defaults, Path("/")) as ctx:
        assert await is_internal_host(NAME, ctx)
        assert not await is_internal_host("missing.acme-torg.ru", ctx)


def test_redirect_refused_when_a_name_resolves_to_link_local(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dns: int
):
    """A redirect to a name the registry's resolver maps to 169.254.169.254 is refused before
    any connection, although the target itself is on loopback."""
    target = f"http://metadata.acme-torg.ru:{free_port()}/latest/meta-data/"
    with HttpServer({"/to-metadata": redirect(target)}) as server:
        result = _check(tmp_path, capsys, _web(server.url("/to-metadata")), dns)
    assert (result["success"], result["reason"]) == (False, "redirect_private"), result


def test_proxy_host_is_resolved_by_registry_resolver_when_proxy_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dns: int, zone: DnsZone
):
    with ForwardProxy() as proxy, HttpServer({"/ok": page("hello")}) as server:
        channel = {
            **_web(server.url("/ok")),  # the proxy resolves the target itself
            "proxy": f"http://proxy.acme-torg.ru:{proxy.port}",
        }
        result = _check(tmp_path, capsys, channel, dns)
    assert result["success"], result
    assert ("proxy.acme-torg.ru", "A") in zone.queries
