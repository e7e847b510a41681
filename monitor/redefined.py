"""Which channels and sources a registry reload redefined: a change that alters what is
measured (target, kind, check mode, SIP/push settings, expectations, rendering, headers,
timeout...) makes the old result say nothing about the new definition.

The rule is deliberately simple: every field counts except pure presentation and
bookkeeping (name, service, hours, notes, interval, publication and deprecation facts,
maintenance, damping thresholds), so a field added later is measured until said otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from monitor.config import Channel, Source

__all__ = ["PRESENTATION_FIELDS", "measured_definition", "redefined", "same_measurement"]

# Fields whose change leaves the measurement valid: how a channel is shown or judged, not
# what the probe talks to or expects. `interval` only moves the next run (scheduler).
PRESENTATION_FIELDS = frozenset(
    {
        "name",
        "service",
        "hours",
        "notes",
        "interval",
        "status",
        "published_on",
        "deprecated_since",
        "replaced_by",
        "maintenance",
        "failure_threshold",
        "success_threshold",
    }
)

K = TypeVar("K")


def measured_definition(target: Channel | Source) -> dict[str, Any]:
    """The part of a channel's or source's definition that decides what its probe measures,
    as a plain dict (comparable with ==), with the model's class so a change of kind counts."""
    fields = target.model_dump(exclude=set(PRESENTATION_FIELDS))
    fields["__type__"] = type(target).__name__
    return fields


def same_measurement(old: Channel | Source, new: Channel | Source) -> bool:
    """Whether a result measured for `old` still describes `new` (same object: trivially)."""
    return old is new or measured_definition(old) == measured_definition(new)


def redefined(old: Mapping[K, Channel | Source], new: Mapping[K, Channel | Source]) -> set[K]:
    """Keys present in both mappings whose measured definition changed."""
    return {k for k, target in new.items() if k in old and not same_measurement(old[k], target)}
