"""The MX prober against a real DNS server on loopback."""

from __future__ import annotations

from conftest import MAIL_DOMAIN, MAIL_HOST
from servers import DnsZone

from monitor.config import EmailChannel
from monitor.probers import ProbeContext, probe_mx


def email(address: str) -> EmailChannel:
    return EmailChannel.model_validate({"id": "mail", "kind": "email", "email": address})


async def test_success_when_domain_has_mx_with_address(ctx: ProbeContext):
    """A domain whose MX hosts resolve succeeds, hosts sorted by preference."""
    result = await probe_mx(email(f"b2b@{MAIL_DOMAIN}"), ctx)
    assert result.success, result
    assert result.details["mx_count"] == 2
    assert result.details["mx_hosts"][0] == {
        "host": MAIL_HOST,
        "preference": 10,
        "addresses": ["127.0.0.1"],
    }


async def test_addresses_from_additional_section_when_server_sends_them(
    ctx: ProbeContext, dns_zone: DnsZone
):
    """When the MX answer carries the host's addresses, no A or AAAA query follows."""
    result = await probe_mx(email("help@glue.test"), ctx)
    assert result.success, result
    assert result.details["mx_hosts"][0]["addresses"] == ["127.0.0.1"]
    assert dns_zone.queries == [("glue.test", "MX")]


async def test_domain_is_case_insensitive_when_address_has_capitals(ctx: ProbeContext):
    """GR@MAIL.TEST looks up mail.test."""
    result = await probe_mx(email(f"GR@{MAIL_DOMAIN.upper()}"), ctx)
    assert result.success, result


async def test_null_mx_when_domain_refuses_mail(ctx: ProbeContext):
    """An MX of '.' at preference 0 (RFC 7505) fails with null_mx."""
    result = await probe_mx(email("x@nullmx.test"), ctx)
    assert result.reason == "null_mx"


async def test_mx_no_address_when_mx_host_does_not_resolve(ctx: ProbeContext):
    """MX hosts without A/AAAA records fail with mx_no_address."""
    result = await probe_mx(email("x@noaddress.test"), ctx)
    assert result.reason == "mx_no_address"
    assert result.details["mx_hosts"] == ["ghost.noaddress.test"]


async def test_implicit_mx_when_domain_has_an_address_but_no_mx(ctx: ProbeContext):
    """A domain with an A record but no MX is its own mail host (RFC 5321 §5.1): a sending
    server delivers there, so the address works; mx_count 0 and implicit_mx say how."""
    result = await probe_mx(email("x@nomx.test"), ctx)
    assert result.success, result
    assert (result.details["mx_count"], result.details["implicit_mx"]) == (0, True)
    assert result.details["mx_hosts"] == [
        {"host": "nomx.test", "preference": 0, "addresses": ["127.0.0.1"]}
    ]


async def test_no_mx_when_domain_has_neither_mx_nor_address(ctx: ProbeContext):
    """No MX and no A/AAAA: nowhere to deliver, no_mx."""
    result = await probe_mx(email("x@nomail.test"), ctx)
    assert result.reason == "no_mx"
    assert "no address to deliver to" in result.message


async def test_dns_nxdomain_when_domain_does_not_exist(ctx: ProbeContext):
    """An unknown domain fails with dns_nxdomain."""
    result = await probe_mx(email("x@nowhere.test"), ctx)
    assert result.reason == "dns_nxdomain"


async def test_dns_servfail_when_server_fails(ctx: ProbeContext):
    """SERVFAIL from the only nameserver fails with dns_servfail."""
    result = await probe_mx(email("x@servfail.test"), ctx)
    assert result.reason == "dns_servfail"


async def test_dns_timeout_when_server_is_silent(ctx: ProbeContext):
    """A nameserver that never answers ends with dns_timeout (or the probe's timeout)."""
    result = await probe_mx(email("x@silent.test"), ctx)
    assert result.reason in ("dns_timeout", "timeout")
    assert result.duration_seconds < 3
