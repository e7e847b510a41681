"""Name resolution through the registry's `defaults.resolver` for HTTP probes.

DESIGN: `defaults.resolver` names "DNS servers to use instead of the system's", and every
probe shares it. httpx resolves with the system (`getaddrinfo`) inside httpcore's network
backend, so `ResolvingBackend` wraps httpcore's own backend: it resolves the host name
with the probe context's dnspython resolver and connects to the address; TLS still gets
the name (httpcore passes `server_hostname` to `start_tls`) and so does the Host header.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpcore

from monitor.model import ProbeFailure
from monitor.probers._base import note

__all__ = ["ResolvingBackend", "resolve_host"]

# RFC 6761 §6.3: "localhost" names are answered by the resolver library itself.
_LOCALHOST = ("::1", "127.0.0.1")


async def resolve_host(
    resolver: dns.asyncresolver.Resolver, host: str, lifetime: float
) -> list[str]:
    """The addresses of `host` (an IP literal stands for itself), IPv6 and IPv4 interleaved
    as RFC 8305 §4 orders them. Raises `ProbeFailure` `dns_nxdomain` (no such name, or no
    A/AAAA record), `dns_servfail` (no server answered) or `dns_timeout`."""
    bare = host.strip("[]").rstrip(".")
    try:
        return [str(ipaddress.ip_address(bare.split("%")[0]))]
    except ValueError:
        pass
    if bare.lower() == "localhost" or bare.lower().endswith(".localhost"):
        return list(_LOCALHOST)
    answers = await asyncio.gather(
        *(_query(resolver, bare, rdtype, lifetime) for rdtype in ("AAAA", "A")),
        return_exceptions=True,
    )
    found = [a for a in answers if isinstance(a, list)]
    if any(found):
        return _interleave(*found)
    failures = [a for a in answers if isinstance(a, ProbeFailure)]
    for reason in ("dns_nxdomain", "dns_timeout", "dns_servfail"):
        for failure in failures:
            if failure.reason == reason:
                raise failure
    if failures:
        raise failures[0]
    raise ProbeFailure("dns_nxdomain", f"{bare} has no A or AAAA record")


async def _query(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str, lifetime: float
) -> list[str]:
    try:
        answer = await resolver.resolve(name, rdtype, lifetime=lifetime)
    except dns.resolver.NXDOMAIN:
        raise ProbeFailure("dns_nxdomain", f"{name} does not exist (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        return []
    except dns.resolver.NoNameservers as exc:
        raise ProbeFailure("dns_servfail", f"no server answered for {name}: {exc}"[:300]) from None
    except dns.exception.Timeout:
        raise ProbeFailure("dns_timeout", f"DNS lookup of {name} {rdtype} timed out") from None
    except dns.exception.DNSException as exc:
        raise ProbeFailure("dns_error", f"DNS lookup of {name} failed: {exc}"[:300]) from None
    return [record.to_text() for record in answer]


def _interleave(*families: list[str]) -> list[str]:
    out: list[str] = []
    for index in range(max(len(f) for f in families)):
        out.extend(f[index] for f in families if index < len(f))
    return out


class ResolvingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, with host names resolved by `resolver`.

    `connect_tcp(host, port)` tries the addresses in order (a refused or unreachable one
    gives way to the next); the error of the last attempt is raised as httpcore's own."""

    def __init__(self, resolver: dns.asyncresolver.Resolver, lifetime: float) -> None:
        self._resolver = resolver
        self._lifetime = lifetime
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        note(phase="dns")
        addresses = await resolve_host(self._resolver, host, self._lifetime)
        note(phase="connect")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None  # resolve_host never returns an empty list
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
