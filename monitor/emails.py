"""E-mail addresses as pages write them: plain, in `mailto:` links, obfuscated for people
("support [at] acme [dot] ru", "hr(собака)acme.ru") or by Cloudflare's e-mail protection.

An address counts when `email-validator` accepts its syntax (RFC 5321/5322 with RFC 6531
internationalised addresses), its domain ends in a real public suffix (Mozilla's Public
Suffix List, shipped inside `publicsuffixlist`), so `logo@2x.png` is an asset name, and
its domain is not reserved for examples and tests (RFC 2606, RFC 6761).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

import email_validator
from publicsuffixlist import PublicSuffixList

__all__ = [
    "canonical_email",
    "decode_cfemail",
    "emails_in_mailto",
    "emails_in_text",
    "is_placeholder_domain",
]

_PSL = PublicSuffixList(accept_unknown=False)
# RFC 2606 §2-3 and RFC 6761 §6: names that can never be a real mailbox's domain.
_RESERVED_TLDS = frozenset(["test", "example", "invalid", "localhost", "local"])
_RESERVED_DOMAINS = frozenset(["example.com", "example.net", "example.org"])
# Names that are placeholders in form hints and manuals under any suffix ("ivanov@example.ru",
# "you@yourdomain.com"), though registered by someone: never a published contact.
_PLACEHOLDER_NAMES = frozenset(["example", "yourdomain", "your-domain", "yourcompany", "yoursite"])
# Retina asset names: "logo@2x.png", "icon@1.5x.webp".
_ASSET_DOMAIN = re.compile(r"^\d+(?:\.\d+)?x\.", re.I)

_LOCAL = r"[^\W_][\w!#$%&'*+=?^~.-]{0,63}"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
# A suffix ends where its script does: "info@acme.ruПишите" is info@acme.ru.
_TLD = (
    r"(?:xn--[a-z0-9-]{1,59}|[a-z]{2,63}(?![a-z0-9-])|[а-яё]{2,63}(?![а-яё0-9-])"
    r"|[^\W\d_]{2,63}(?![\w-]))"
)
_EMAIL = re.compile(rf"(?<![\w.+-]){_LOCAL}@(?:{_LABEL}\.)+{_TLD}", re.I)
# What people write instead of "@" and "." so that harvesters miss it but readers do not.
_AT = r"\s*[\[({<]\s*(?:at|собака|эт)\s*[\])}>]\s*"
_DOT = r"(?:\s*[\[({<]\s*(?:dot|точка)\s*[\])}>]\s*|\.)"
_OBFUSCATED = re.compile(
    rf"(?<![\w.+-])(?P<local>{_LOCAL}){_AT}(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})+)(?![\w-])",
    re.I,
)
_OBFUSCATED_DOT = re.compile(_DOT, re.I)
_AT_SIGN = re.compile("@")
_AT_WORD = re.compile(_AT, re.I)
_MAX_MAILTO_CHARS = 10_000
_MAX_MAILTO_ADDRESSES = 50
_MAX_CANDIDATES = 5_000  # per text: validation is ~25 µs each, a page of "@" stays bounded


@lru_cache(maxsize=16_384)  # drift asks for every registry address at every scan
def canonical_email(address: str) -> str | None:
    """`address` lower-cased with its domain in Unicode (IDNA 2008), or None when it is not
    a published mailbox: bad syntax, no public suffix, an asset name or a reserved domain.

    The one form drift compares (DESIGN, "Drift: when two contacts are the same")."""
    address = address.strip().strip(".")
    if "@" not in address or len(address) > 254:
        return None
    if _ASSET_DOMAIN.match(address.rpartition("@")[2]):
        return None
    try:
        valid = email_validator.validate_email(
            address, check_deliverability=False, allow_smtputf8=True, globally_deliverable=False
        )
    except (email_validator.EmailNotValidError, UnicodeError, ValueError):
        return None
    domain = valid.ascii_domain.lower()
    registrable = _PSL.privatesuffix(domain)
    if registrable is None or is_placeholder_domain(domain):
        return None
    if registrable.split(".", 1)[0] in _PLACEHOLDER_NAMES:
        return None
    return f"{valid.local_part}@{valid.domain}".lower()


def is_placeholder_domain(domain: str) -> bool:
    """True for domains reserved for documentation and tests (RFC 2606, RFC 6761):
    `example.com|net|org` and anything under `.test`, `.example`, `.invalid`,
    `.localhost` (and `.local`, RFC 6762)."""
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    return labels[-1] in _RESERVED_TLDS or ".".join(labels[-2:]) in _RESERVED_DOMAINS


def emails_in_text(text: str) -> Iterator[tuple[str, str]]:
    """(canonical address, raw text) for each address a reader sees in `text`, plain or
    obfuscated with [at]/[dot] (and their Russian forms), in order of appearance."""
    found = list(_around(text, _AT_SIGN, _EMAIL, lambda m: m.group()))
    found += _around(text, _AT_WORD, _OBFUSCATED, _deobfuscated)
    for _, address, raw in sorted(found, key=lambda item: item[0]):
        yield address, raw


def _around(
    text: str,
    anchor: re.Pattern[str],
    pattern: re.Pattern[str],
    spelled: Callable[[re.Match[str]], str],
) -> Iterator[tuple[int, str, str]]:
    """Matches of `pattern` that cover an `anchor` ("@", "[at]"), looked for only in a
    window around each anchor: a page of digits or words without one costs nothing."""
    end = 0
    for count, at in enumerate(anchor.finditer(text)):
        if count >= _MAX_CANDIDATES:
            return
        if at.start() < end:
            continue
        match = pattern.search(text, max(end, at.start() - 65), at.end() + 255)
        if match is None or not match.start() <= at.start() < match.end():
            continue
        end = match.end()
        address = canonical_email(spelled(match))
        if address:
            yield match.start(), address, match.group()


def _deobfuscated(match: re.Match[str]) -> str:
    return f"{match.group('local')}@{_OBFUSCATED_DOT.sub('.', match.group('domain'))}"


def emails_in_mailto(href: str) -> Iterator[tuple[str, str]]:
    """Addresses of a `mailto:` URI (RFC 6068): several comma-separated ones, and those in
    `to=`/`cc=` fields; `subject=` and the rest are not addresses."""
    target, _, query = href.strip()[len("mailto:") :].partition("?")
    raws = unquote(target[:_MAX_MAILTO_CHARS]).split(",")
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key.lower() in ("to", "cc"):
            raws += value.split(",")
    for raw in raws[:_MAX_MAILTO_ADDRESSES]:
        address = canonical_email(raw.strip())
        if address:
            yield address, raw.strip()


@lru_cache(maxsize=1024)
def decode_cfemail(encoded: str) -> str | None:
    """The address hidden by Cloudflare's e-mail protection: hex bytes, the first one the
    XOR key of the rest (`data-cfemail`, or `/cdn-cgi/l/email-protection#…`); None if the
    value is not such an encoding."""
    encoded = encoded.strip()
    if not 4 <= len(encoded) <= 1024 or len(encoded) % 2:
        return None
    try:
        data = bytes.fromhex(encoded)
    except ValueError:
        return None
    key = data[0]
    try:
        return bytes(byte ^ key for byte in data[1:]).decode("utf-8")
    except UnicodeDecodeError:
        return None
