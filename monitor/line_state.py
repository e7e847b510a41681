"""What a phone line's state reads as, in words, where nothing measured it as up or down.

A numbering check dials nothing: it may only say that the number exists. A deprecated line
is expected to be switched off: the only question is where it is still published. The status
page, the API and `check` all show these words, so no view can call such a line "up".
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.config import Channel
from monitor.model import ProbeResult

__all__ = ["DEPRECATED_TEXT", "line_note", "measured"]

DEPRECATED_TEXT = "switched off · must not be published"


def measured(channel: Channel) -> bool:
    """Whether probes of the channel measure reachability (and so give uptime): all but a
    phone's numbering check and a deprecated phone line."""
    if channel.kind != "phone":
        return True
    return channel.status == "active" and getattr(channel, "check", "numbering") != "numbering"


def line_note(
    channel: Channel, result: ProbeResult | None, published_on: Iterable[str] = ()
) -> str | None:
    """`number valid · not dialled`, `number invalid · not dialled`, or for a deprecated line
    `switched off · must not be published` with the sources that still show it; None for a
    channel whose probes measure reachability."""
    if channel.kind != "phone":
        return None
    if channel.status == "deprecated":
        sources = sorted(set(published_on))
        return DEPRECATED_TEXT + (f" · still shown on {', '.join(sources)}" if sources else "")
    if getattr(channel, "check", "numbering") != "numbering":
        return None
    if result is not None and result.details.get("number_valid") is False:
        return "number invalid · not dialled"
    return "number valid · not dialled"
