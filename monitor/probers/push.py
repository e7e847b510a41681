"""A channel on push (`check: push`) is measured by an outside tester that reports to
`POST /api/v1/push/{org}/{channel}` (monitor.push); nothing here can measure it. A one-shot
`check` says so instead of inventing a state."""

from __future__ import annotations

from typing import Any

from monitor.model import ProbeResult
from monitor.probers._base import ProbeContext, guarded

__all__ = ["probe_push"]


@guarded
async def probe_push(channel: Any, ctx: ProbeContext) -> ProbeResult:
    """Never up or down: `success=None`, reason `push_only`."""
    return ProbeResult(
        None, "push_only", "this channel is reported by push; only the daemon receives pushes"
    )
