"""How one-shot results are printed: the contract JSON, or tables for a person."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Sequence
from typing import Any

from monitor.call_findings import REACHABLE, reachable_finding
from monitor.history import Incident
from monitor.line_state import line_note
from monitor.model import Contacts, Finding, ProbeResult
from monitor.rounds import ChannelResult, Round

__all__ = ["check_json", "check_table", "contacts_table", "findings_table", "table"]


def check_json(round_: Round) -> dict[str, Any]:
    return {
        "results": [_result_json(r) for r in round_.results],
        "findings": [f.to_json() for f in round_.findings] + _reachable_findings(round_),
    }


def _reachable_findings(round_: Round) -> list[dict[str, Any]]:
    """A deprecated line that still rang on a test call (`monitor.call_findings`, the same
    finding the daemon raises)."""
    found = (reachable_finding(r.org, r.channel.id, r.result) for r in round_.results)
    return [f.to_json() for f in found if f is not None]


def _result_json(item: ChannelResult) -> dict[str, Any]:
    result = item.result
    return {
        "org": item.org,
        "channel": item.channel.id,
        "kind": item.channel.kind,
        "service": item.channel.service,
        "status": item.channel.status,
        "contact": item.channel.contact,
        "success": result.success,
        "reason": result.reason,
        "message": result.message,
        "duration_seconds": result.duration_seconds,
        "details": result.details,
        "in_maintenance": item.in_maintenance,  # a failure then is planned work
        "maintenance": item.maintenance,  # the window, e.g. "sun 02:00–04:00", or null
        "closed": item.closed,  # outside its hours: the hours, e.g. "mon-fri 09:00–18:00"
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; cells are shown as text, newlines flattened."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = " ".join(str(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def check_table(round_: Round) -> str:
    shown_on: dict[tuple[str, str], list[str]] = {}
    for f in round_.findings:
        if f.type == "deprecated_published" and f.channel:
            shown_on.setdefault((f.org, f.channel), []).append(f.source)
    rows = [
        (
            r.org,
            r.channel.id,
            r.channel.kind,
            r.channel.status,
            _result_word(r, shown_on.get((r.org, r.channel.id), [])),
            r.result.reason,
            f"{r.result.duration_seconds * 1000:.0f}ms",
            r.result.message,
        )
        for r in round_.results
    ]
    out = table(("ORG", "CHANNEL", "KIND", "STATUS", "RESULT", "REASON", "TIME", "MESSAGE"), rows)
    out += "\n\n" + _summary(round_.results)
    planned = sum(r.in_maintenance for r in round_.results)
    if planned:
        out += f"; {planned} in maintenance (failures there are planned work)"
    closed = sum(r.closed is not None and r.result.success is False for r in round_.results)
    if closed:
        out += f"; {closed} failed outside their published hours (expected)"
    if round_.scans:
        read = sum(scan.success for scan in round_.scans.values())  # a failed scan read nothing
        out += f"; {read} of {len(round_.scans)} sources read\n\n" + findings_table(round_.findings)
    return out


def _summary(results: Sequence[ChannelResult]) -> str:
    """`2/3 channels up`, with what measured nothing and the switched-off lines that were
    dialled counted apart: a deprecated line refusing a call is healthy, not "up"."""
    unmeasured: list[ChannelResult] = []
    switched_off: list[ChannelResult] = []
    counted: list[ChannelResult] = []
    for r in results:
        if r.result.success is None:
            unmeasured.append(r)
        elif line_note(r.channel, r.result):
            switched_off.append(r)
        else:
            counted.append(r)
    out = f"{sum(r.result.success is True for r in counted)}/{len(counted)} channels up"
    if unmeasured:
        out += f" ({len(unmeasured)} not measured: phone lines not dialled, skipped calls, pushes)"
    if switched_off:
        refused = sum(r.result.success is True for r in switched_off)
        out += f"; {refused} of {len(switched_off)} switched-off lines refuse calls as expected"
        ringing = sum(r.result.reason == REACHABLE for r in switched_off)
        unproven = len(switched_off) - refused - ringing
        out += f", {ringing} still reachable" if ringing else ""
        out += f", {unproven} not proven (see REASON)" if unproven else ""
    return out


def _result_word(item: ChannelResult, shown_on: list[str]) -> str:
    """up / DOWN, or for what measured nothing the words of `monitor.line_state`; inside
    a maintenance window, `maintenance (DOWN, sun 02:00–04:00)`; a failure outside the
    channel's hours, `closed (DOWN, open mon-fri 09:00–18:00)`."""
    word = _measured_word(item, shown_on)
    if item.maintenance is not None:
        return f"maintenance ({word}, {item.maintenance})"
    if item.closed is not None and item.result.success is False:
        return f"closed ({word}, open {item.closed})"
    return word


def _measured_word(item: ChannelResult, shown_on: list[str]) -> str:
    note = line_note(item.channel, item.result, shown_on)
    if note is not None and item.result.success is None:
        return note
    if item.result.success is None:
        return f"not measured ({item.result.reason})" if item.result.reason else "not measured"
    if note is not None:  # a switched-off line that was dialled: refusing is its health
        return f"{note} · {_call_verdict(item.result)}"
    return "up" if item.result.success else "DOWN"


def _call_verdict(result: ProbeResult) -> str:
    """What a test call of a switched-off line proved: that it refuses calls, that it still
    rings or answers (`deprecated_reachable`), or nothing (a timeout, a trunk that is down:
    the reason says why)."""
    code = result.details.get("sip_status_code")
    answer = f" (SIP {code})" if code else ""
    if result.success:
        return f"refused as expected{answer}"
    if result.reason == REACHABLE:
        return f"STILL REACHABLE{answer}"
    return f"not proven: {result.reason}{answer}"


def findings_table(findings: Sequence[Finding]) -> str:
    if not findings:
        return "no drift findings"
    rows = [(f.type, f.org, f.source, f.channel, f.contact, f.evidence) for f in findings]
    return table(("FINDING", "ORG", "SOURCE", "CHANNEL", "CONTACT", "EVIDENCE"), rows)


def incidents_table(incidents: Sequence[Incident], timezone: str = "UTC") -> str:
    """Incidents as a table, times in `timezone` (the registry's) with their UTC offset."""
    if not incidents:
        return "no incidents"
    rows = [
        (
            i.org,
            i.channel,
            i.kind,
            _when(i.started_at, timezone),
            _ended(i, timezone),
            _duration(i.to_json()["duration_seconds"]),
            i.reason,
            i.message,
        )
        for i in incidents
    ]
    return table(
        ("ORG", "CHANNEL", "KIND", "STARTED", "ENDED", "DURATION", "REASON", "MESSAGE"), rows
    )


def _ended(incident: Incident, timezone: str) -> str:
    """When the incident ended, and why when no measured recovery ended it."""
    if not incident.ended_at:
        return "ongoing"
    when = _when(incident.ended_at, timezone)
    return f"{when} ({incident.end_note})" if incident.end_note else when


def _when(epoch: float, timezone: str = "UTC") -> str:
    moment = datetime.datetime.fromtimestamp(epoch, zoneinfo.ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M:%S%z")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def contacts_table(contacts: Contacts) -> str:
    rows: list[tuple[Any, ...]] = [
        ("phone", p.e164 + (f" ext. {p.extension}" if p.extension else ""), p.number_type, p.raw)
        for p in contacts.phones
    ]
    rows += [("email", e.address, "-", e.raw) for e in contacts.emails]
    # Hidden contacts are not published; listed so a maintainer sees why one was left out.
    rows += [
        (
            "hidden phone",
            p.e164 + (f" ext. {p.extension}" if p.extension else ""),
            p.number_type,
            p.raw,
        )
        for p in contacts.hidden_phones
    ]
    rows += [("hidden email", e.address, "-", e.raw) for e in contacts.hidden_emails]
    if not rows:
        return "no contacts found"
    return table(("KIND", "CONTACT", "TYPE", "AS SHOWN"), rows)
