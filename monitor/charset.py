"""Bytes of a fetched page to the text a browser shows (WHATWG Encoding and HTML §13.2.3).

Precedence as browsers apply it: a byte order mark, then the charset of the Content-Type
header, then a `<meta charset>` or `<meta http-equiv="Content-Type">` in the head, else
UTF-8 if the bytes are UTF-8, else windows-1251 (a Russian browser's default). Labels
are WHATWG labels (`webencodings`): `iso-8859-1` and `latin1` decode as windows-1252,
`gb2312` as GBK, `x-cp1251` as windows-1251; a page that says UTF-16 in ASCII bytes is
read as UTF-8. The meta is looked for in the whole head, not only its first
1024 bytes: browsers that meet it later re-decode the page (Firefox reloads, Chromium
switches), so a `<meta charset>` after a long `<style>` still rules what is shown.
"""

from __future__ import annotations

import codecs
import re

import webencodings

__all__ = ["decode_page", "encoding_of"]

_HEADER_CHARSET = re.compile(rb"charset\s*=\s*[\"']?([^\s\"';,]+)", re.I)
_META = re.compile(rb"<meta(?=[\s/])[^>]{0,1024}>", re.I)
_META_CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([^\s"';/>]+)""", re.I)
_BODY = re.compile(rb"<body[\s>]", re.I)
_HEAD_BYTES = 256 * 1024  # how far into a page its head may reach
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_page(body: bytes, content_type: str | None = None) -> str:
    """Text of `body` in the encoding a browser would pick (see `encoding_of`); bytes that
    are not valid in it become U+FFFD, as in a browser."""
    name, skip = encoding_of(body, content_type)
    return body[skip:].decode(name, errors="replace")


def encoding_of(body: bytes, content_type: str | None = None) -> tuple[str, int]:
    """(Python codec name, bytes of BOM to skip) for `body`: BOM, then the Content-Type
    header's charset, then the head's meta, else UTF-8 (WHATWG "determine the encoding")."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name, len(bom)
    header = _HEADER_CHARSET.search((content_type or "").encode("latin-1", "replace"))
    declared = _codec(header.group(1)) if header else None
    return declared or _meta_encoding(body) or _undeclared(body), 0


def _undeclared(body: bytes) -> str:
    """UTF-8 when the bytes are UTF-8, else windows-1251: the fallback a browser set up for
    Russian uses (HTML §13.2.3.3, "suggested default encoding" for the `ru` locale)."""
    try:
        body[:_HEAD_BYTES].decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut at the end of the sample is not an error of the page.
        if exc.start < min(len(body), _HEAD_BYTES) - 4:
            return "cp1251"
    return "utf-8"


def _meta_encoding(body: bytes) -> str | None:
    head = body[:_HEAD_BYTES]
    body_tag = _BODY.search(head)
    head = _without_comments(head[: body_tag.start()] if body_tag else head)
    for meta in _META.finditer(head):
        charset = _META_CHARSET.search(meta.group())
        if charset is None:
            continue
        name = _codec(charset.group(1))
        if name:
            return name
    return None


def _without_comments(data: bytes) -> bytes:
    """`data` without `<!-- … -->` (an unclosed comment runs to the end), in linear time."""
    kept, pos = [], 0
    while (start := data.find(b"<!--", pos)) >= 0:
        kept.append(data[pos:start])
        end = data.find(b"-->", start + 4)
        if end < 0:
            return b"".join(kept)
        pos = end + 3
    kept.append(data[pos:])
    return b"".join(kept)


def _codec(label: bytes) -> str | None:
    """Python codec for a WHATWG label; UTF-16 declared in ASCII bytes means UTF-8."""
    encoding = webencodings.lookup(label.decode("ascii", "replace").strip("\"' "))
    if encoding is None:
        return None
    if encoding.name in ("utf-16le", "utf-16be"):
        return "utf-8"
    if encoding.name == "x-user-defined":
        return "windows-1252"
    return encoding.codec_info.name
