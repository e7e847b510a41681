"""Bytes from the wire shown as text in a reason, not as a Python repr.

h11 words its refusals with `{!r}` of a `bytes`/`bytearray` ("illegal chunk header:
bytearray(b'ZZ\\r\\n')"); an operator should read the line itself: `"ZZ\\r\\n"`.
"""

from __future__ import annotations

import ast
import re

__all__ = ["readable", "wire_text"]

MAX_CHARS = 120
# A bytes literal as repr() writes it, optionally inside bytearray(...).
_BYTES_REPR = re.compile(r"""(?:bytearray\()?b('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\)?""")
_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\", '"': '\\"'}


def wire_text(data: bytes) -> str:
    """`data` decoded as Latin-1 (every byte is one character, as HTTP/1.1 heads are read,
    RFC 9110 §5.5), control and non-printable characters escaped, at most `MAX_CHARS`
    characters (then "…"), in double quotes."""
    text = data.decode("latin-1")
    shown = "".join(
        _ESCAPES.get(c) or (c if c.isprintable() else f"\\x{ord(c):02x}") for c in text[:MAX_CHARS]
    )
    return f'"{shown}{"…" if len(text) > MAX_CHARS else ""}"'


def readable(message: str) -> str:
    """`message` with every bytes/bytearray repr in it replaced by `wire_text`."""

    def text(match: re.Match[str]) -> str:
        try:
            data = ast.literal_eval("b" + match.group(1))
        except (ValueError, SyntaxError):
            return match.group(0)
        return wire_text(data)

    return _BYTES_REPR.sub(text, message)
