"""Bytes of a fetched page to text: the charset the server or the page declares, else UTF-8.

Labels are read as browsers read them (WHATWG Encoding, via `webencodings`): `iso-8859-1`
and `us-ascii` are windows-1252, `gb2312` is GBK, so a body regex sees what a customer sees.
"""

from __future__ import annotations

import codecs
import re

import webencodings

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
    header = (content_type or "").encode("latin-1", "replace")
    declared = _declared(_HEADER_CHARSET, header) or _declared(_META_CHARSET, body[:_SNIFF_BYTES])
    if declared is None:
        return body.decode("utf-8", errors="replace")
    return declared.decode(body, "replace")[0]


def _declared(pattern: re.Pattern[bytes], data: bytes) -> codecs.CodecInfo | None:
    match = pattern.search(data)
    if not match:
        return None
    encoding = webencodings.lookup(match.group(1).decode("ascii", "replace"))
    if encoding is None or encoding.name == "replacement":
        return None
    # A page that says UTF-16 in ASCII bytes is not UTF-16 (WHATWG: treat as UTF-8).
    return None if encoding.name.startswith("utf-16") else encoding.codec_info
