"""Secrets kept out of what the monitor shows: the password in a URL's userinfo."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["MASK", "mask_password"]

MASK = "***"


def mask_password(url: str) -> str:
    """`url` with the password of its userinfo (RFC 3986 §3.2.1) replaced by `***`:
    "http://user:s3cret@host/" -> "http://user:***@host/". Anything else, including a text
    that is not a URL, comes back unchanged; the probe itself keeps using the real URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:{MASK}@{hostport}").geturl()
