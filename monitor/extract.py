"""Contacts a page publishes: phones and e-mails a visitor can see or click.

HTML goes through a real parser (lexbor, via selectolax) and is read as a browser shows it
(`monitor.visible`): one line per rendered line, Unicode spaces and dashes as a reader
takes them, hidden content kept apart. Phones are found by libphonenumber and must look
like phones (a `+`, a trunk prefix or separators); numbers right after words such as
"ИНН", "order" or "№" are identifiers unless written the way phones are. E-mails are read
by `monitor.emails`; JSON-LD, microdata and hCard by `monitor.structured`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import phonenumbers
from selectolax.lexbor import LexborHTMLParser

from monitor.emails import emails_in_mailto, emails_in_text
from monitor.model import Contacts, PublishedEmail, PublishedPhone
from monitor.phones import e164, is_placeholder, number_type_name, parse_valid
from monitor.structured import structured_contacts
from monitor.visible import PageText, mark_lines, normalise_text, read_html

__all__ = ["extract_contacts", "looks_like_html", "normalise_url"]

# Words after which digits are an identifier, an amount or an address, not a phone; whole
# words only, so "paid" is not "id" and "карты" in "Блокировка карты:" is still a label.
_ID_LABEL = re.compile(
    r"(?:(?<!\w)(?:инн|inn|огрн(?:ип)?|ogrn|кпп|бик|bic|окпо|октмо|оквэд|снилс|snils"
    r"|[рклс]/с|сч[её]т[аеу]?|заказ[аеу]?|order|invoice|арт(?:икул)?|sku|id|индекс|index"
    r"|zip|postal|почтов\w*|карт[аыуе]?|card|паспорт\w*|passport|tax|vat|iban|swift"
    r"|трек\w*|tracking|накладн\w*|договор\w*|contract|лицензи\w*|licen[cs]e|руб|rub|usd|eur"
    r"|no\.?)(?!\w)|№|#|[$€₽])[\s:.#№-]{0,6}$",
    re.I,
)
# A phone word close before a number makes it a phone whatever else the line says.
_PHONE_LABEL = re.compile(
    r"(?<!\w)(?:тел|телефон\w*|phone|tel|telephone|факс|fax|моб|mobile|hotline|звоните"
    r"|call)(?!\w)[^\n]{0,24}$",
    re.I,
)
# Written the way only phones are: "+7 …", "8 (495) …", "(212) …", "8-800-555-89-82".
_PHONE_WRITING = re.compile(
    r"^(?:\+\d|8\s?\(\d{3,5}\)|\(\d{3,5}\)|8[\s-]\d{3}[\s-]\d{2,3}[\s-]\d{2}[\s-]?\d{2}(?!\d))"
)
_NOT_PHONE_AFTER = re.compile(
    r"\s{0,3}(?:₽|руб(?!\w)|rub(?!\w)|р\.(?!\s*[А-ЯЁ])|\$|€|%|год\w*|гг?\.?+(?!\s*[А-ЯЁA-Z])(?!\w)"
    r"|кг(?!\w)|kg(?!\w))",
    re.I,
)
# A phone is written with "+", a trunk prefix, brackets or separators; bare digit runs are ids.
_PHONE_SHAPE = re.compile(r"^\s*(\+|8[\s(-]|8\d{10}$|\(|\d{1,4}[\s.-]\d)")
# Dates written with digits only: "2024-03-07", "07.03.2024", "2024/03/07".
_DATE = re.compile(r"^(?:\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([./])\d{1,2}\2\d{2,4})(?!\d)")
# The country code and check digits that open an IBAN (ISO 13616): "DE89 ", "RU02 ".
_IBAN_HEAD = re.compile(r"(?<!\w)[A-Z]{2}\d{2}\s?$")
_MAX_TEXT_CHARS = 20_000_000
# Containers pages close explicitly (unlike p, li, td): their depth measures nesting.
_NESTING_TAG = re.compile(
    r"<(/?)(?:div|span|section|article|main|nav|aside|header|footer|table|ul|ol|b|i|a|em|"
    r"strong|font|blockquote|form|center)\b",
    re.I,
)
_MAX_NESTING = 500
_ANY_TAG = re.compile(r"<[A-Za-z]")
_MAX_TAGS = 100_000  # real pages have 1,000-30,000 elements

# An extension as people write it after a number: ", доб. 76077", "(доб. 76077)",
# "доб.76077", "вн. 410", "доп. 512", "добавочный 600", "ext. 12", "x12", "#12".
_EXTENSION = (
    r"\s{0,3}[,;]?\s{0,3}\(?\s{0,2}(?:доб(?:авочный)?|доп(?:олнительный)?|вн(?:утр(?:енний)?)?"
    r"|ext(?:ension|n)?|x|#)\s{0,2}[.:]?\s{0,3}(?P<extension>\d{1,6})\)?"
)
# A run that may be a phone: digits with the separators people put between them, and an
# extension. Bounded repetition keeps the scan linear in the size of the page. Latin
# letters or digits glued to it make it part of a code; Cyrillic words glued to it are
# inline text a reader tells apart ("8 800 234-70-00Звоните" from adjacent spans).
_CANDIDATE = re.compile(
    rf"(?<![0-9A-Za-z_+/-])(?P<number>\+?\(?\d[\d \t().-]{{5,24}}\d)(?:{_EXTENSION})?"
    r"(?![0-9A-Za-z_/])",
    re.I,
)
_LINK_EXTENSION = re.compile(rf"(?:{_EXTENSION})$", re.I)
_GAP = re.compile(r"[ \t]+")  # where a run may be cut into a phone and something else
_MAX_LINKS = 1_000  # distinct tel: and mailto: links read per page
_MAX_PARSES = 10_000  # per page: a page of digit soup stops here instead of running for minutes


def looks_like_html(text: str, content_type: str | None = None) -> bool:
    if content_type:
        return "html" in content_type.lower() or "xml" in content_type.lower()
    head = text[:2048].lower()
    return "<html" in head or "<!doctype" in head or "<body" in head or "<div" in head


def extract_contacts(
    text: str, region: str, *, html: bool, base_url: str | None = None
) -> Contacts:
    """Every distinct phone (E.164 + extension) and e-mail (lower-cased, IDN domain in
    Unicode) that `text` publishes; for HTML also the contacts it hides, apart."""
    text = text[:_MAX_TEXT_CHARS]
    if not html:
        plain = normalise_text(text)
        return _collect(_text_phones(plain, region), _text_emails(plain), frozenset())
    tree = _parse_html(text)
    structured_phones, structured_emails = structured_contacts(tree)
    page = read_html(tree, parse=_parse_html)
    # Visible text first: its wording is the best evidence when a number is also a link.
    shown = _without_link_labels(list(_text_phones(page.visible, region)), page, region)
    phones = [*shown, *_link_phones(page.links, region)]
    phones += _structured_phones(structured_phones, region)
    emails = [*_text_emails(page.visible), *_mailto_emails(page.links)]
    emails += _structured_emails(structured_emails)
    hidden_phones = [*_text_phones(page.hidden, region), *_link_phones(page.hidden_links, region)]
    hidden_emails = [*_text_emails(page.hidden), *_mailto_emails(page.hidden_links)]
    absolute = frozenset(
        normalise_url(urljoin(base_url or "", href))
        for href in page.links
        if not href.lower().startswith(("tel:", "mailto:", "javascript:"))
    )
    return _with_hidden(_collect(phones, emails, absolute), hidden_phones, hidden_emails)


def _with_hidden(
    shown: Contacts, phones: Iterable[PublishedPhone], emails: Iterable[PublishedEmail]
) -> Contacts:
    """`shown` plus the hidden contacts it does not also show, marked `visible=False`."""
    shown_phones = {(p.e164, p.extension) for p in shown.phones}
    shown_emails = {e.address for e in shown.emails}
    hidden = _collect(
        (p for p in phones if (p.e164, p.extension) not in shown_phones),
        (e for e in emails if e.address not in shown_emails),
        frozenset(),
    )
    return replace(
        shown,
        hidden_phones=tuple(replace(p, visible=False) for p in hidden.phones),
        hidden_emails=tuple(replace(e, visible=False) for e in hidden.emails),
    )


def _parse_html(html: str) -> LexborHTMLParser:
    """The tree of `html` with browser line breaks marked, cut by `_shallow_prefix`."""
    return LexborHTMLParser(mark_lines(_shallow_prefix(html)))


def _shallow_prefix(html: str) -> str:
    """`html` up to where its nesting gets deeper than any real page's (the parser's work
    grows with depth times tags, so 5 MB of "<div>" would take minutes), and up to its
    100,000th tag (a tree costs ~150 bytes a node: 5 MB of "<br>" would hold 170 MB)."""
    for count, tag in enumerate(_ANY_TAG.finditer(html)):
        if count >= _MAX_TAGS:
            html = html[: tag.start()]
            break
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


# --- links and structured data ------------------------------------------------------


def _first_links(hrefs: Iterable[str], scheme: str) -> list[str]:
    """The first distinct links of `scheme` ("tel:"): a page of a million links is read in
    time."""
    links = dict.fromkeys(h for h in hrefs if h[: len(scheme)].lower() == scheme)
    return list(links)[:_MAX_LINKS]


def _link_phones(hrefs: Iterable[str], region: str) -> Iterator[PublishedPhone]:
    for href in _first_links(hrefs, "tel:"):
        phone = _tel_uri_phone(href, region)
        if phone:
            yield phone


def _tel_uri_phone(href: str, region: str) -> PublishedPhone | None:
    """The phone of a `tel:` URI (RFC 3966): the extension from `;ext=`, from `;postd=`
    or from digits dialled after a pause (`p`, `w`, `,`), as phones' diallers read them."""
    shown = normalise_text(unquote(href[4:])).strip()
    number, *params = shown.split(";")
    extension = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() in ("ext", "postd") and any(c.isdigit() for c in value):
            extension = "".join(c for c in value if c.isdigit())
    parts = re.split(r"[pPwW,]", number, maxsplit=1)
    if len(parts) == 2 and any(c.isdigit() for c in parts[1]):
        number, extension = parts[0], extension or "".join(c for c in parts[1] if c.isdigit())
    written = _LINK_EXTENSION.search(number)
    if written and extension is None:
        number, extension = number[: written.start()], written.group("extension")
    parsed = parse_valid(number, region)
    if parsed is None or is_placeholder(parsed):
        return None
    return _published(parsed, shown, extension[:6] if extension else None)


def _without_link_labels(
    phones: list[PublishedPhone], page: PageText, region: str
) -> list[PublishedPhone]:
    """`phones` less the bare numbers that only label a `tel:` link dialling an extension
    of them: "<a href="tel:+74993221877p105">+7 499 322-18-77</a>" publishes доб. 105."""
    labels: Counter[str] = Counter()
    for href, text in page.tel_labels[:_MAX_LINKS]:
        link = _tel_uri_phone(href, region)
        if link is not None and link.extension:
            labels.update(p.e164 for p in _text_phones(text, region) if p.extension is None)
    if not labels:
        return phones
    kept = []
    for phone in reversed(phones):
        if phone.extension is None and labels[phone.e164] > 0:
            labels[phone.e164] -= 1
            continue
        kept.append(phone)
    return kept[::-1]


def _structured_phones(values: Iterable[str], region: str) -> Iterator[PublishedPhone]:
    for value in values:
        if value.strip().lower().startswith("tel:"):
            phone = _tel_uri_phone(value.strip(), region)
            if phone:
                yield phone
        else:
            yield from _text_phones(normalise_text(value), region)


def _structured_emails(values: Iterable[str]) -> Iterator[PublishedEmail]:
    for value in values:
        if value.strip().lower().startswith("mailto:"):
            yield from _mailto_emails([value.strip()])
        else:
            yield from _text_emails(normalise_text(value))


def _mailto_emails(hrefs: Iterable[str]) -> Iterator[PublishedEmail]:
    for href in _first_links(hrefs, "mailto:"):
        if href.lower().startswith("mailto:"):
            for address, raw in emails_in_mailto(href):
                yield PublishedEmail(address, raw)


# --- text ---------------------------------------------------------------------------


def _text_emails(text: str) -> Iterator[PublishedEmail]:
    for address, raw in emails_in_text(text):
        yield PublishedEmail(address, raw)


def _text_phones(text: str, region: str) -> Iterator[PublishedPhone]:
    """Phones in plain text: bounded candidate runs, each tried whole, then its prefixes and
    suffixes at spaces (so "12345 8 800 555-89-82" still yields the phone), each parse
    checked against the numbering plan and the words around it."""
    pos, budget = 0, [_MAX_PARSES]
    while budget[0] > 0 and (match := _CANDIDATE.search(text, pos)):
        found = _phone_in(text, match, region, budget)
        if found is None:
            pos = match.end("number")
            continue
        phone, end = found
        yield phone
        pos = end


def _phone_in(
    text: str, match: re.Match[str], region: str, budget: list[int]
) -> tuple[PublishedPhone, int] | None:
    """The first phone in the candidate `match` and where it ends in `text`."""
    run, start = match.group("number"), match.start("number")
    cuts = [m.start() for m in _GAP.finditer(run)]
    spans = [(0, len(run))] + [(0, c) for c in reversed(cuts)] + [(c + 1, len(run)) for c in cuts]
    for begin, end in spans:
        raw = run[begin:end].strip()
        if not 7 <= sum(ch.isdigit() for ch in raw) <= 21 or not _PHONE_SHAPE.match(raw):
            continue
        at, stop = start + begin, start + end
        if _not_a_phone(text, start, at, stop, raw):
            continue
        budget[0] -= 1
        if budget[0] < 0:
            return None
        number = parse_valid(raw, region)
        if number is None or is_placeholder(number):
            continue
        if end == len(run) and match.group("extension"):
            raw = text[at : match.end()].strip()
            return _published(number, raw, match.group("extension")), match.end()
        return _published(number, raw, number.extension or None), stop
    return None


def _not_a_phone(text: str, run_start: int, at: int, stop: int, raw: str) -> bool:
    """True when the words around `raw` make it an identifier, amount, date or address.
    The tail of a longer digit run (`at` > `run_start`) is read with the run's label, so
    the last groups of "IBAN DE89 3704 0044 0532 0130 00" are not a phone."""
    if _NOT_PHONE_AFTER.match(text, stop) or _DATE.match(raw):
        return True
    before = text[max(0, at - 40) : at].rpartition("\n")[2]
    labelled = _ID_LABEL.search(before)
    if at > run_start:
        before_run = text[max(0, run_start - 40) : run_start].rpartition("\n")[2]
        labelled = labelled or _ID_LABEL.search(before_run) or _IBAN_HEAD.search(before_run)
    if not labelled:
        return False
    return not (_PHONE_LABEL.search(before) or _PHONE_WRITING.match(raw))


def _published(number: phonenumbers.PhoneNumber, raw: str, extension: str | None) -> PublishedPhone:
    return PublishedPhone(e164(number), extension, raw.strip(), number_type_name(number))
