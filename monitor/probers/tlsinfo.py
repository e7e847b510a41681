"""What a server's TLS handshake presented: the chain's earliest expiry and the leaf's identity.

The earliest `notAfter` of every certificate the server sent is what expires first for a
customer (blackbox_exporter's `probe_ssl_earliest_cert_expiry`): an intermediate that
lapses before the leaf breaks the site as surely as the leaf would.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from typing import Any

__all__ = ["PeerChain", "peer_chain"]

_DER = 2  # _ssl.ENCODING_DER


@dataclass(frozen=True)
class PeerChain:
    """The certificates a server presented, as probe facts."""

    not_after: float | None  # epoch seconds: the earliest notAfter of the chain
    tls_version: str | None  # "TLSv1.3"
    leaf: dict[str, str]  # fingerprint_sha256, subject, issuer, serial (the leaf's)
    chain_length: int


def peer_chain(ssl_object: ssl.SSLObject | None) -> PeerChain | None:
    """The chain of an established TLS connection, or None without TLS.

    Python 3.13 has `SSLObject.get_unverified_chain()`; 3.10-3.12 have the same method on
    the private `_sslobj`. Without either, only the leaf (`getpeercert`) is read.
    """
    if ssl_object is None:
        return None
    certs = _unverified_chain(ssl_object)
    infos = [c.get_info() for c in certs]
    leaf_der = certs[0].public_bytes(_DER) if certs else ssl_object.getpeercert(binary_form=True)
    if not infos:
        infos = [ssl_object.getpeercert() or {}]
    expiries = [ssl.cert_time_to_seconds(i["notAfter"]) for i in infos if i.get("notAfter")]
    leaf = infos[0]
    return PeerChain(
        not_after=min(expiries) if expiries else None,
        tls_version=ssl_object.version(),
        leaf={
            "fingerprint_sha256": hashlib.sha256(leaf_der).hexdigest() if leaf_der else "",
            "subject": _name(leaf.get("subject")),
            "issuer": _name(leaf.get("issuer")),
            "serial": str(leaf.get("serialNumber", "")),
        },
        chain_length=len(infos),
    )


def _unverified_chain(ssl_object: ssl.SSLObject) -> list[Any]:
    for owner in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        method = getattr(owner, "get_unverified_chain", None)
        if method is not None:
            try:
                return list(method() or [])
            except (ssl.SSLError, ValueError):
                return []
    return []


def _name(rdns: Any) -> str:
    """An X.500 name as `CN=example.org,O=Example` (RFC 4514 order: most specific first)."""
    if not rdns:
        return ""
    parts = [f"{_SHORT.get(k, k)}={v}" for rdn in reversed(rdns) for k, v in rdn]
    return ",".join(parts)


_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}
