"""Findings that come from test calls, not from pages: a deprecated phone line that still
rings (DESIGN, second round: `deprecated_reachable`).

`check` and the daemon make the same finding from the same probe result: its `source` is
`sip-test-call` (the test call, not a page), its `contact` the E.164 number, its evidence
the SIP answer (`SIP 180`). In the daemon it is raised by the call that rang and cleared
by one that finds the number out of service again (404/410/484/604: the probe succeeds);
a call that proves nothing either way (timeout, trunk down, budget spent) leaves it as it is.
"""

from __future__ import annotations

from monitor.model import Finding, ProbeResult

__all__ = ["CALL_SOURCE", "REACHABLE", "reachable_finding", "still_reachable"]

CALL_SOURCE = "sip-test-call"
REACHABLE = "deprecated_reachable"


def reachable_finding(org: str, channel: str, result: ProbeResult) -> Finding | None:
    """The `deprecated_reachable` finding `result` makes for channel `org/channel`, or None
    when the probe did not find a deprecated line ringing."""
    if result.reason != REACHABLE:
        return None
    return Finding(
        REACHABLE,
        org,
        CALL_SOURCE,
        channel=channel,
        contact=result.details.get("e164"),
        evidence=f"SIP {result.details.get('sip_status_code')}",
    )


def still_reachable(
    current: Finding | None, org: str, channel: str, result: ProbeResult
) -> Finding | None:
    """The finding after `result`: a new one if the line rang, None if the call found it out
    of service (success), else `current` unchanged."""
    found = reachable_finding(org, channel, result)
    if found is not None:
        return found
    return None if result.success else current
