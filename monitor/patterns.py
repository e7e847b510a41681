"""Registry regular expressions (`body_regex`, `body_not_regex`) compiled with RE2.

The patterns come from the registry and the text from pages we do not control, so they run
on a linear-time engine, as blackbox_exporter's Go `regexp` does: nested quantifiers such as
`(a+)+$` against a 5 MB hostile page take milliseconds, never a backtracking stall of the
event loop. RE2 has no backreferences or lookaround; the registry rejects such patterns at
load time with the engine's own message.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

__all__ = ["PatternInvalid", "compile_pattern", "search"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error comes back as an exception, not on stderr
_OPTIONS.max_mem = 32 << 20  # bytes for the compiled program; huge alternations fail cleanly


class PatternInvalid(ValueError):  # noqa: N818 - reads as "the pattern is invalid"
    """The pattern cannot be compiled by RE2; the message says why, in one line."""


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by RE2 (cached: every probe of a channel reuses it).

    Raises `PatternInvalid` with RE2's reason, e.g. "invalid perl operator: (?<=" for a
    lookbehind, which RE2 (and Go's regexp) do not support.
    """
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternInvalid(
            f"RE2 (linear-time, no backreferences or lookaround) cannot compile it: {detail}"
        ) from None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches anywhere in `text`, in time linear in `len(text)`."""
    return compile_pattern(pattern).search(text) is not None
