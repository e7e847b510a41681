"""Request settings every page and WebSocket probe shares: headers and proxy.

`defaults.http.headers` / `defaults.http.proxy` (DESIGN, second round) apply to every
request; a channel's own `headers` are merged over them.
"""

from __future__ import annotations

from typing import Any

from monitor.probers._base import ProbeContext

__all__ = ["proxy_for", "request_headers"]


def request_headers(target: Any, ctx: ProbeContext) -> dict[str, str]:
    """`defaults.http.headers`, then the target's own `headers` over them (names compared
    case-insensitively, the target's spelling kept)."""
    merged: dict[str, str] = {}
    http = getattr(ctx.defaults, "http", None)
    for source in (getattr(http, "headers", None) or {}, getattr(target, "headers", None) or {}):
        for name, value in source.items():
            for known in [k for k in merged if k.lower() == name.lower()]:
                del merged[known]
            merged[name] = value
    return merged


def proxy_for(target: Any, ctx: ProbeContext) -> str | None:
    """The target's own `proxy`, else `defaults.http.proxy`, else None (then the
    environment's HTTP(S)_PROXY / NO_PROXY apply)."""
    own = getattr(target, "proxy", None)
    return own or getattr(getattr(ctx.defaults, "http", None), "proxy", None)
