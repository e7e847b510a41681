"""Request settings every HTTP probe, page fetch, rendered page and WebSocket probe
shares: which headers go out, and through which proxy.

`defaults.http.headers` / `defaults.http.proxy` (DESIGN, second round) apply to every
request; a channel's own `headers` are merged over them and its own `proxy` replaces the
default one. This module is the one place that rule lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.probers._base import ProbeContext

__all__ = ["merged_headers", "proxy_for", "request_headers", "request_proxy"]


def merged_headers(ctx: ProbeContext, own: Mapping[str, str] | None = None) -> dict[str, str]:
    """`defaults.http.headers`, then `own` over them. Header names compare
    case-insensitively (RFC 9110 §5.1): a later `user-agent` replaces an earlier
    `User-Agent`, and the later spelling is kept."""
    merged: dict[str, str] = {}
    http = getattr(ctx.defaults, "http", None)
    for source in (getattr(http, "headers", None) or {}, own or {}):
        for name, value in source.items():
            for known in [k for k in merged if k.lower() == name.lower()]:
                del merged[known]
            merged[name] = value
    return merged


def request_proxy(ctx: ProbeContext, own: str | None = None) -> str | None:
    """`own` when set, else `defaults.http.proxy`; None: HTTP(S)_PROXY / NO_PROXY apply."""
    return own or getattr(getattr(ctx.defaults, "http", None), "proxy", None)


def request_headers(target: Any, ctx: ProbeContext) -> dict[str, str]:
    """The headers a request for `target` (a channel or a source) sends: see
    `merged_headers`; a target without `headers` sends the defaults."""
    return merged_headers(ctx, getattr(target, "headers", None))


def proxy_for(target: Any, ctx: ProbeContext) -> str | None:
    """The proxy a request for `target` goes through: its own `proxy`, else the default."""
    return request_proxy(ctx, getattr(target, "proxy", None))
