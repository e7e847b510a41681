"""Contacts a page publishes: phones and e-mails a visitor can see or click.

HTML goes through a real parser (lexbor, via selectolax). Visible text is rebuilt with a
line break at every block boundary, so digits of neighbouring cells never merge into a
"number". Phones are found by libphonenumber's matcher and must look like phones (a `+`,
a trunk prefix or separators); numbers right after words such as "ИНН", "order" or "№" are
identifiers, not phones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import phonenumbers
from selectolax.lexbor import LexborHTMLParser, LexborNode

from monitor.model import Contacts, PublishedEmail, PublishedPhone
from monitor.phones import e164, number_type_name, parse_valid

__all__ = ["extract_contacts", "looks_like_html", "normalise_url"]

_HIDDEN_TAGS = ["script", "style", "template", "noscript", "head", "svg", "iframe", "object"]
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "option",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "button",
        "label",
        "select",
        "textarea",
    ]
)
_MAX_BLOCK_SEARCH = 64  # ancestors to climb looking for a block; deeper inline nesting is odd

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
# Words after which digits are an identifier, an amount or an address, not a phone.
_NOT_PHONE_BEFORE = re.compile(
    r"(№|#|\bN\s?o\.?|инн|огрн|огрнип|кпп|бик|окпо|октмо|р/с|к/с|сч[её]т|счет|заказ|order|invoice"
    r"|арт(?:икул)?\.?|sku|id|индекс|index|zip|postal|почтов|карт[аыу]|card|паспорт|snils|снилс"
    r"|tax|vat|iban|swift|руб|₽|\$|€)\W{0,6}$",
    re.I,
)
_NOT_PHONE_AFTER = re.compile(r"\s{0,3}(₽|руб|rub|р\.|\$|€|%|г\.|год)", re.I)
# A phone is written with "+", a trunk prefix, brackets or separators; bare digit runs are ids.
_PHONE_SHAPE = re.compile(r"^\s*(\+|8[\s(-]|8\d{10}$|\(|\d{1,4}[\s.-]\d)")
_MAX_TEXT_CHARS = 20_000_000
# Containers pages close explicitly (unlike p, li, td): their depth measures nesting.
_NESTING_TAG = re.compile(
    r"<(/?)(?:div|span|section|article|main|nav|aside|header|footer|table|ul|ol|b|i|a|em|"
    r"strong|font|blockquote|form|center)\b",
    re.I,
)
_MAX_NESTING = 500

# A run that may be a phone: digits with the separators people put between them, and an
# extension. Bounded repetition keeps the scan linear in the size of the page.
_CANDIDATE = re.compile(
    r"(?<![\w+/-])\+?\(?\d[\d \u00a0\t().\u2010-\u2015-]{5,24}\d"
    r"(?:\s{0,3}(?:доб|доп|вн|ext|x)\.?\s{0,3}\d{1,6})?(?![\w/])",
    re.I,
)
_GAP = re.compile(r"[ \u00a0\t]+")  # where a run may be cut into a phone and something else
_MAX_PARSES = 20_000  # per page: a page of digit soup stops here instead of running for minutes


def looks_like_html(text: str, content_type: str | None = None) -> bool:
    if content_type:
        return "html" in content_type.lower() or "xml" in content_type.lower()
    head = text[:2048].lower()
    return "<html" in head or "<!doctype" in head or "<body" in head or "<div" in head


def extract_contacts(
    text: str, region: str, *, html: bool, base_url: str | None = None
) -> Contacts:
    """Every distinct phone (E.164 + extension) and e-mail (lower-cased) that `text` publishes."""
    text = text[:_MAX_TEXT_CHARS]
    if not html:
        return _collect(_text_phones(text, region), _text_emails(text), frozenset())
    tree = LexborHTMLParser(_shallow_prefix(text))
    links = list(_hrefs(tree))
    json_ld = list(_json_ld_telephones(tree))
    tree.strip_tags(_HIDDEN_TAGS)
    visible = _visible_text(tree)
    # Visible text first: its wording is the best evidence when a number is also a link.
    phones = [*_text_phones(visible, region), *_link_phones(links, region)]
    phones += [p for raw in json_ld if (p := _parse_phone(raw, region))]
    emails = [*_text_emails(visible), *_mailto_emails(links)]
    absolute = frozenset(
        normalise_url(urljoin(base_url or "", href))
        for href in links
        if not href.lower().startswith(("tel:", "mailto:", "javascript:"))
    )
    return _collect(phones, emails, absolute)


def _shallow_prefix(html: str) -> str:
    """`html` up to where its nesting gets deeper than any real page's: the parser's work
    grows with depth times tags, so 5 MB of "<div>" would take minutes."""
    depth = 0
    for tag in _NESTING_TAG.finditer(html):
        depth = max(0, depth - 1) if tag.group(1) else depth + 1
        if depth > _MAX_NESTING:
            return html[: tag.start()]
    return html


def normalise_url(url: str) -> str:
    """Scheme and host lower-cased, no fragment, no trailing slash: for link comparisons."""
    parts = urlsplit(url.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )


def _collect(
    phones: Iterable[PublishedPhone], emails: Iterable[PublishedEmail], links: frozenset[str]
) -> Contacts:
    unique_phones: dict[tuple[str, str | None], PublishedPhone] = {}
    for phone in phones:
        unique_phones.setdefault((phone.e164, phone.extension), phone)
    unique_emails: dict[str, PublishedEmail] = {}
    for email in emails:
        unique_emails.setdefault(email.address, email)
    return Contacts(tuple(unique_phones.values()), tuple(unique_emails.values()), links)


# --- HTML ---------------------------------------------------------------------------


def _hrefs(tree: LexborHTMLParser) -> Iterator[str]:
    for anchor in tree.css("a[href]"):
        href = anchor.attributes.get("href")
        if href:
            yield href.strip()


def _json_ld_telephones(tree: LexborHTMLParser) -> Iterator[str]:
    for script in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(script.text(deep=True) or "null")
        except (ValueError, RecursionError):
            continue
        yield from _telephones_in(data, depth=0)


def _telephones_in(data: Any, depth: int) -> Iterator[str]:
    if depth > 32:
        return
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "telephone" and isinstance(value, str):
                yield value
            elif key == "telephone" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from _telephones_in(value, depth + 1)
    elif isinstance(data, list):
        for item in data:
            yield from _telephones_in(item, depth + 1)


def _visible_text(tree: LexborHTMLParser) -> str:
    """Text of every text node, with a newline wherever the enclosing block changes."""
    parts: list[str] = []
    previous_block = None
    for node in tree.root.traverse(include_text=True) if tree.root else ():
        if node.tag != "-text":
            continue
        block = _block_of(node)
        if block != previous_block:
            parts.append("\n")
            previous_block = block
        parts.append(node.text_content or "")
    return "".join(parts)


def _block_of(node: LexborNode) -> int | None:
    current = node.parent
    for _ in range(_MAX_BLOCK_SEARCH):
        if current is None or current.tag in _BLOCK_TAGS:
            break
        current = current.parent
    return current.mem_id if current is not None else None


def _link_phones(hrefs: Iterable[str], region: str) -> Iterator[PublishedPhone]:
    for href in hrefs:
        if href.lower().startswith("tel:"):
            raw = unquote(href[4:]).strip()
            phone = _parse_phone(raw.replace(";ext=", " ext. "), region, shown=raw)
            if phone:
                yield phone


def _mailto_emails(hrefs: Iterable[str]) -> Iterator[PublishedEmail]:
    for href in hrefs:
        if href.lower().startswith("mailto:"):
            for address in unquote(href[7:].split("?", 1)[0]).split(","):
                if _EMAIL.fullmatch(address.strip()):
                    yield PublishedEmail(address.strip().lower(), address.strip())


# --- text ---------------------------------------------------------------------------


def _text_emails(text: str) -> Iterator[PublishedEmail]:
    for match in _EMAIL.finditer(text):
        yield PublishedEmail(match.group().lower(), match.group())


def _text_phones(text: str, region: str) -> Iterator[PublishedPhone]:
    """Phones in plain text: bounded candidate runs, each tried whole, then its prefixes and
    suffixes at spaces (so "12345 8 800 555-89-82" still yields the phone), each parse
    checked against the numbering plan and the words around it."""
    pos, budget = 0, [_MAX_PARSES]
    while budget[0] > 0 and (match := _CANDIDATE.search(text, pos)):
        found = _phone_in(text, match.start(), match.group(), region, budget)
        if found is None:
            pos = match.end()
            continue
        phone, end = found
        yield phone
        pos = end


def _phone_in(
    text: str, start: int, run: str, region: str, budget: list[int]
) -> tuple[PublishedPhone, int] | None:
    """The first phone in `run` (found at `start` in `text`) and where it ends."""
    cuts = [m.start() for m in _GAP.finditer(run)]
    spans = [(0, len(run))] + [(0, c) for c in reversed(cuts)] + [(c + 1, len(run)) for c in cuts]
    for begin, end in spans:
        raw = run[begin:end].strip()
        if not 7 <= sum(ch.isdigit() for ch in raw) <= 21 or not _PHONE_SHAPE.match(raw):
            continue
        at, stop = start + begin, start + end
        if _NOT_PHONE_BEFORE.search(text, max(0, at - 40), at) or _NOT_PHONE_AFTER.match(
            text, stop
        ):
            continue
        budget[0] -= 1
        if budget[0] < 0:
            return None
        number = parse_valid(raw, region)
        if number is not None:
            return _published(number, raw), stop
    return None


def _parse_phone(text: str, region: str, shown: str | None = None) -> PublishedPhone | None:
    number = parse_valid(text, region)
    return _published(number, shown or text) if number else None


def _published(number: phonenumbers.PhoneNumber, raw: str) -> PublishedPhone:
    return PublishedPhone(
        e164(number), number.extension or None, raw.strip(), number_type_name(number)
    )
