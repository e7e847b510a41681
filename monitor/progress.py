"""What the daemon says about itself while it starts: the first round's progress, and the
troubles a person should see at once (a rejected registry; history that cannot be written
is the status page's `history_problem`, read from the daemon's `HistoryHealth`).

The scheduler spreads the first round of probes over one `defaults.interval` from the
start, so the round is over by start + interval + timeout at the latest; that is the
estimate of the time left.
"""

from __future__ import annotations

import datetime
import time
import zoneinfo
from dataclasses import dataclass

from monitor.state import State

__all__ = ["FirstRound", "banners", "first_round", "heading"]


@dataclass(frozen=True)
class FirstRound:
    """Progress of the first round: channels and source pages with a result so far."""

    channels_probed: int
    channels: int
    sources_read: int
    sources: int
    seconds_left: float  # estimate; 0 when overdue or done
    done: bool

    def text(self) -> str:
        """`first round: 4 of 21 channels probed, about 50 s left` (and the pages, if any)."""
        parts = [f"first round: {self.channels_probed} of {self.channels} channels probed"]
        if self.sources:
            parts.append(f"{self.sources_read} of {self.sources} pages read")
        left = round(self.seconds_left)
        parts.append(f"about {left} s left" if left >= 1 else "finishing")
        return ", ".join(parts)


def first_round(state: State, now: float | None = None) -> FirstRound:
    """The first round's progress in `state` at `now` (epoch seconds)."""
    now = time.time() if now is None else now
    defaults = state.registry.defaults
    deadline = state.started_at + defaults.interval + defaults.timeout
    return FirstRound(
        channels_probed=sum(s.result is not None for s in state.channels.values()),
        channels=len(state.channels),
        sources_read=sum(s.result is not None for s in state.sources.values()),
        sources=len(state.sources),
        seconds_left=max(0.0, deadline - now),
        done=state.first_round_done(),
    )


def heading(state: State) -> str:
    """The organisations' names, as the status page's heading names them."""
    names = [org.name or org.id for org in state.registry.organizations]
    return ", ".join(names) if names else "contact-monitor"


def banners(state: State) -> list[str]:
    """Troubles to show above everything: a rejected registry."""
    out = []
    reload = state.reload
    if not reload.successful:
        zone = zoneinfo.ZoneInfo(state.registry.defaults.timezone)
        at = datetime.datetime.fromtimestamp(reload.at, zone).strftime("%Y-%m-%d %H:%M %Z")
        first = f": {reload.errors[0]}" if reload.errors else ""
        more = f" (and {len(reload.errors) - 1} more)" if len(reload.errors) > 1 else ""
        out.append(
            f"The registry change seen at {at} was rejected; the last good registry keeps "
            f"running{first}{more}. Run `contact-monitor validate`."
        )
    # History write failures are not here: the daemon's `HistoryHealth` is their one
    # source, shown by the status page as its `history_problem` banner.
    return out
