"""The text of an HTML page as a visitor sees it, and what the page keeps out of sight.

Lines break where a browser breaks them: at `<br>`, `<hr>` and every block element (list
items, table cells, paragraphs, …), so "info@acme.ru<br>sales@acme.ru" is two lines.
Unicode spaces and dashes become the ASCII ones a reader takes them for; characters that
show nothing (soft hyphen, zero-width space/joiner, word joiner, BOM) are dropped.
Content under `hidden`, an inline `display:none`/`visibility:hidden`, `<template>` and
`<noscript>` (browsers run scripts) is not shown: it is kept apart, as hidden text, with the
values of `<input type=hidden>`.

Form controls and images show text that is not in the tree's text nodes (HTML Living
Standard §4.10, §4.8.4.4): a text-like `<input>` shows its `value` (placeholders are
format hints and stay unread), a `<select>` its options (the closed control shows one,
the visitor opens it to read the others, so all count; an option's `label` replaces its
text), an `<img>` its `alt` (the text equivalent of what it draws, read aloud and shown when
it fails to load). An `<iframe srcdoc>` shows the document written in `srcdoc` (§4.8.5),
read like the page; other `<iframe>` content is fallback text and is not shown. SVG
`<text>`/`<tspan>` is drawn; its `<title>` (a hover tooltip), `<desc>` and `<metadata>` are
not, nor is a `<datalist>` (suggestions) or the tab's `<title>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from monitor.emails import decode_cfemail

__all__ = ["PageText", "mark_lines", "normalise_text", "read_html"]

_NOT_SHOWN = [
    "script",
    "style",
    "head",
    "title",
    "desc",
    "metadata",
    "iframe",
    "object",
    "datalist",
]
# <input> types that draw no value as text (checkbox, file, …) or mask it (password).
_VALUE_NOT_SHOWN = frozenset(
    {"hidden", "password", "checkbox", "radio", "file", "image", "color", "range"}
)
_DRAWN = "input[value], option[label], img[alt]"
_MAX_SRCDOC_DEPTH = 2  # an <iframe srcdoc> inside a srcdoc is read; deeper ones are not
_MAX_SRCDOCS = 100  # srcdoc documents read per page
_MAX_SRCDOC_CHARS = 200_000  # and their characters in all: each becomes part of the tree
_MAX_REVEALED = 10_000  # inputs, options and images whose text is written out, per page
# Tags at which a browser starts a new line (blocks, cells, list items) and <br>, <hr>.
_LINE_TAG = re.compile(
    r"<(?=/?(?:address|article|aside|blockquote|br|button|caption|center|dd|details|dialog"
    r"|div|dl|dt|fieldset|figcaption|figure|footer|form|h[1-6]|header|hgroup|hr|label|li|main"
    r"|menu|nav|ol|option|p|pre|section|summary|table|tbody|td|text|textarea|tfoot|th|thead|tr|ul)"
    r"[\s/>])",
    re.I,
)
_HIDING = (
    '[hidden], [style*="none" i], [style*="hidden" i], [style*="collapse" i], template, noscript,'
    ' input[type="hidden" i]'
)
_MAX_TEL_LABELS = 1_000
_MAX_HIDDEN_READ = 1_000  # hidden blocks whose text is kept; the rest are only removed
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))", re.I
)
_CF_LINK = "/cdn-cgi/l/email-protection#"
_MAX_ANCESTORS = 1_000

_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_SPACES += "\u202f\u205f\u3000\t"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"
_TRANSLATION = str.maketrans(
    {**dict.fromkeys(_SPACES, " "), **dict.fromkeys(_DASHES, "-"), **dict.fromkeys(_INVISIBLE)}
)


@dataclass
class PageText:
    """What one page shows and hides: text with one line per rendered line, and anchors."""

    visible: str = ""
    hidden: str = ""
    links: list[str] = field(default_factory=list)  # hrefs of shown anchors, as written
    hidden_links: list[str] = field(default_factory=list)
    tel_labels: list[tuple[str, str]] = field(default_factory=list)  # (tel: href, its text)


def normalise_text(text: str) -> str:
    """`text` with Unicode spaces as " ", Unicode dashes and minus as "-", and
    invisible characters (U+00AD, U+200B-U+200D, U+2060, U+FEFF) removed."""
    return text.translate(_TRANSLATION)


def mark_lines(html: str) -> str:
    """`html` with a newline before every tag at which a browser breaks the line, so the
    parsed text has one line per rendered line (one pass over the source, in C)."""
    return _LINE_TAG.sub("\n<", html)


def read_html(
    tree: LexborHTMLParser, parse: Callable[[str], LexborHTMLParser] | None = None
) -> PageText:
    """Visible and hidden text and links of a page parsed from `mark_lines(html)`; the
    tree is consumed. `parse` (html -> tree, bounded like the page's own parse) reads the
    documents of `<iframe srcdoc>`; without it they are not shown."""
    if parse is not None:
        _inline_srcdocs(tree, parse)
    _reveal_cloudflare_emails(tree)
    _reveal_drawn_text(tree)
    page = PageText()
    hidden_parts: list[str] = []
    for count, node in enumerate(_outermost(list(_hidden_nodes(tree)))):
        if count < _MAX_HIDDEN_READ:
            hidden_parts.append(_hidden_text(node))
            page.hidden_links += _hrefs(node)
            for fragment in node.template_fragments():
                page.hidden_links += _hrefs(fragment)
        node.decompose()
    tree.strip_tags(_NOT_SHOWN)
    root = tree.body or tree.root
    page.visible = normalise_text(root.text(deep=True) if root is not None else "")
    page.hidden = normalise_text("\n".join(hidden_parts))
    page.links = list(_hrefs(root)) if root is not None else []
    for anchor in root.css('a[href^="tel:" i]')[:_MAX_TEL_LABELS] if root is not None else ():
        href = (anchor.attributes.get("href") or "").strip()
        page.tel_labels.append((href, normalise_text(anchor.text(deep=True))))
    return page


def _inline_srcdocs(tree: LexborHTMLParser, parse: Callable[[str], LexborHTMLParser]) -> None:
    """Put the body of each `<iframe srcdoc>` document where the iframe stands, with the
    iframe's `hidden` and `style`, so one pass reads it like the page (and keeps it apart
    when the iframe or a block around it is hidden)."""
    count, chars = 0, 0
    for _ in range(_MAX_SRCDOC_DEPTH):
        frames = tree.css("iframe[srcdoc]")
        for frame in frames:
            source = frame.attributes.get("srcdoc") or ""
            count, chars = count + 1, chars + len(source)
            if count > _MAX_SRCDOCS or chars > _MAX_SRCDOC_CHARS:
                return
            body = parse(source).body
            if body is None:
                continue
            for name in ("hidden", "style"):
                if name in frame.attributes:
                    body.attrs[name] = frame.attributes[name] or ""
            frame.insert_before("\n")  # a frame is a box of its own: its text is apart
            frame.insert_after("\n")
            frame.replace_with(body)
        if not frames:
            return


def _reveal_cloudflare_emails(tree: LexborHTMLParser) -> None:
    """Cloudflare replaces an address by "[email protected]" and a `data-cfemail` hex
    string that its script decodes in the browser: decode it where it stands."""
    for node in tree.css("[data-cfemail]"):
        address = decode_cfemail(node.attributes.get("data-cfemail") or "")
        node.replace_with(address or "")


def _reveal_drawn_text(tree: LexborHTMLParser) -> None:
    """Write out as text what shown controls and images draw from attributes; hidden ones
    stay for `_hidden_text`."""
    for count, node in enumerate(tree.css(_DRAWN)):
        if count >= _MAX_REVEALED:
            break
        attributes = node.attributes
        if "hidden" in attributes or _HIDDEN_STYLE.search(attributes.get("style") or ""):
            continue
        text = _drawn_text(node)
        if text is not None:
            node.replace_with(f"\n{text}\n" if node.tag == "option" else f" {text} ")


def _drawn_text(node: LexborNode) -> str | None:
    """The text an `<input>` (its value), `<option>` (its label) or `<img>` (its alt)
    shows instead of its content; None when it shows its content or nothing from them."""
    attributes = node.attributes
    if node.tag == "input":
        kind = (attributes.get("type") or "text").strip().lower()
        return None if kind in _VALUE_NOT_SHOWN else attributes.get("value") or ""
    if node.tag == "option":
        return attributes.get("label") or None  # an empty label leaves the text shown
    return attributes.get("alt") or ""


def _hidden_nodes(tree: LexborHTMLParser) -> Iterator[LexborNode]:
    for node in tree.css(_HIDING):
        attributes = node.attributes
        if node.tag in ("template", "noscript") or _is_hidden_input(node):
            yield node
            continue
        if "hidden" in attributes or _HIDDEN_STYLE.search(attributes.get("style") or ""):
            yield node


def _is_hidden_input(node: LexborNode) -> bool:
    kind = node.attributes.get("type") or ""
    return node.tag == "input" and kind.strip().lower() == "hidden"


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """Nodes none of whose ancestors is in `nodes`: removing those removes the rest."""
    ids = {node.mem_id for node in nodes}
    keep = []
    for node in nodes:
        parent, steps = node.parent, 0
        while parent is not None and parent.mem_id not in ids and steps < _MAX_ANCESTORS:
            parent, steps = parent.parent, steps + 1
        if parent is None or steps >= _MAX_ANCESTORS:
            keep.append(node)
    return keep


def _hidden_text(node: LexborNode) -> str:
    parts = [node.text(deep=True)]
    for control in node.css(_DRAWN)[:_MAX_REVEALED]:  # the node itself and those inside
        if _is_hidden_input(control):
            parts.append(control.attributes.get("value") or "")
        else:
            parts.append(_drawn_text(control) or "")
    for fragment in node.template_fragments():
        parts.append(fragment.text(deep=True))
    return "\n".join(parts)


def _hrefs(node: LexborNode) -> Iterator[str]:
    for anchor in node.css("a[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        if _CF_LINK in href:
            address = decode_cfemail(href.partition("#")[2])
            href = f"mailto:{address}" if address else ""
        if href:
            yield href
