"""Phones and e-mails a page states for machines: JSON-LD, microdata and hCard.

JSON-LD is read as real sites write it (schema.org `telephone`/`email`, anywhere in the
data, `@graph` included): wrapped in `<!-- -->` or `// <![CDATA[ … ]]>`, several objects
in one block, a trailing comma. A block that still does not parse loses only itself.
Microdata (`itemprop="telephone"`, WHATWG HTML §5.2) and hCard/h-card (`tel`, `email`,
`p-tel`, `u-email`) are read from their `content`, their `href` or their text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = ["structured_contacts"]

_WRAPPERS = re.compile(r"<!--|-->|<!\[CDATA\[|\]\]>|^\s*//.*$", re.M)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_MAX_DEPTH = 32
_MAX_BLOCK_CHARS = 1_000_000
_MAX_VALUES = 1_000
_MICRODATA = '[itemprop~="telephone"], [itemprop~="email"]'
_HCARD = ".vcard .tel, .vcard .email, .h-card .p-tel, .h-card .u-email, .h-card .p-email"


def structured_contacts(tree: LexborHTMLParser) -> tuple[list[str], list[str]]:
    """(phone strings, e-mail strings) stated by JSON-LD, microdata and hCard, as written
    (a `tel:`/`mailto:` prefix is left for the caller to read)."""
    phones: list[str] = []
    emails: list[str] = []
    for script in tree.css("script"):
        if "ld+json" in (script.attributes.get("type") or "").lower():
            for data in _json_values(script.text(deep=True) or ""):
                _collect(data, phones, emails, 0)
    for node in tree.css(_MICRODATA)[:_MAX_VALUES]:
        prop = (node.attributes.get("itemprop") or "").lower()
        (emails if "email" in prop.split() else phones).append(_node_value(node))
    for node in tree.css(_HCARD)[:_MAX_VALUES]:
        classes = (node.attributes.get("class") or "").split()
        is_email = "email" in classes or "u-email" in classes or "p-email" in classes
        (emails if is_email else phones).append(_node_value(node))
    return phones[:_MAX_VALUES], emails[:_MAX_VALUES]


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON value in a script block, tolerating wrappers, concatenated objects and
    trailing commas; nothing for a block that is not JSON."""
    text = _WRAPPERS.sub("", text[:_MAX_BLOCK_CHARS]).strip()
    for attempt in (text, _TRAILING_COMMA.sub(r"\1", text)):
        values = list(_decode_all(attempt))
        if values:
            yield from values
            return


def _decode_all(text: str) -> Iterator[Any]:
    decoder = json.JSONDecoder(strict=False)
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n,;":
            pos += 1
        if pos >= len(text):
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return
        yield value


def _collect(data: Any, phones: list[str], emails: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH or len(phones) + len(emails) > _MAX_VALUES:
        return
    if isinstance(data, list):
        for item in data:
            _collect(item, phones, emails, depth + 1)
    elif isinstance(data, dict):
        for key, value in data.items():
            target = {"telephone": phones, "email": emails}.get(key)
            if target is not None and isinstance(value, str):
                target.append(value)
            elif target is not None and isinstance(value, list):
                target += [v for v in value if isinstance(v, str)]
            else:
                _collect(value, phones, emails, depth + 1)


def _node_value(node: LexborNode) -> str:
    attributes = node.attributes
    value = node.css_first(".value")
    if attributes.get("content"):
        return attributes["content"] or ""
    if attributes.get("href"):
        return attributes["href"] or ""
    return (value or node).text(deep=True) or ""
