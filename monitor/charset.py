"""Bytes of a fetched page to text: the charset the server or the page declares, else UTF-8."""

from __future__ import annotations

import codecs
import re

__all__ = ["decode_page"]

_HEADER_CHARSET = re.compile(rb"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_SNIFF_BYTES = 4096


def decode_page(body: bytes, content_type: str | None = None) -> str:
    """Text of `body`: BOM, then Content-Type charset, then <meta> charset, then UTF-8."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return body.decode(name, errors="replace")
    declared = _declared(_HEADER_CHARSET, (content_type or "").encode("latin-1", "replace"))
    declared = declared or _declared(_META_CHARSET, body[:_SNIFF_BYTES])
    return body.decode(declared or "utf-8", errors="replace")


def _declared(pattern: re.Pattern[bytes], data: bytes) -> str | None:
    match = pattern.search(data)
    if not match:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii", "replace")).name
    except LookupError:
        return None
    # A page that says UTF-16 in ASCII bytes is not UTF-16 (WHATWG: treat as UTF-8).
    return "utf-8" if name.startswith("utf-16") else name
