"""The daemon's memory: the latest result of every channel and source, the damped up/down
state, the current findings, and the registry they belong to.

Everything runs on the event loop, so no locks; readers (metrics, API) see a consistent
snapshot between two awaits.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from monitor.call_findings import CALL_SOURCE, REACHABLE, still_reachable
from monitor.config import Channel, Registry, Source
from monitor.drift import SourceKey, find_drift
from monitor.history import History
from monitor.maintenance import in_maintenance, windows_by_channel
from monitor.model import Finding, ProbeResult
from monitor.probers._base import LOCAL_RESOURCES
from monitor.redefined import redefined
from monitor.sharding import shard_key

__all__ = ["ChannelKey", "ChannelState", "ReloadStatus", "SourceState", "State"]

ChannelKey = tuple[str, str]  # (org id, channel id)
log = structlog.get_logger("monitor.state")


@dataclass
class ChannelState:
    result: ProbeResult | None = None  # the latest probe's, raw
    up: bool | None = None  # damped: None until enough probes agree
    changed_at: float | None = None  # when `up` last changed
    failures_in_row: int = 0
    successes_in_row: int = 0
    probes_ok: int = 0
    probes_failed: int = 0
    probes_skipped: int = 0  # test calls not made (budget spent): neither success nor failure
    skipped: ProbeResult | None = None  # the latest skip, while `result` keeps the measurement
    push_received_at: float | None = None  # when the latest push was accepted (epoch s)
    probes_in_maintenance: int = 0  # counted apart: neither for nor against uptime
    incident_up: bool | None = None  # the state history's incidents were last told
    # When this state began (epoch s): the daemon's start, or the reload that added or
    # redefined the channel; a push is expected from then on.
    since: float = field(default_factory=time.time)


@dataclass
class SourceState:
    result: ProbeResult | None = None
    scans_ok: int = 0
    scans_failed: int = 0


@dataclass
class ReloadStatus:
    successful: bool = True
    at: float = field(default_factory=time.time)  # last attempt
    succeeded_at: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    errors: list[str] = field(default_factory=list)


class State:
    """Latest results and findings for the registry in force."""

    def __init__(
        self,
        registry: Registry,
        history: History | None = None,
        owns: Callable[[str], bool] = lambda key: True,
    ) -> None:
        self.registry = registry
        self.history = history
        self.owns = owns  # whether this replica probes the channel or source "org/id"
        self.channels: dict[ChannelKey, ChannelState] = {}
        self.sources: dict[SourceKey, SourceState] = {}
        self.findings: dict[SourceKey, list[Finding]] = {}
        # Deprecated lines that still ring on a test call (`monitor.call_findings`).
        self.call_findings: dict[ChannelKey, Finding] = {}
        self.reload = ReloadStatus()
        self.started_at = time.time()
        self.local_failures = 0  # probes that failed for the monitor's own lack of resources
        self._short_of_resources = False
        self._index()

    # --- registry ---------------------------------------------------------------------

    def _index(self) -> None:
        old_channels: dict[ChannelKey, Channel] = getattr(self, "channel_defs", {})
        old_sources: dict[SourceKey, Source] = getattr(self, "source_defs", {})
        self.channel_defs: dict[ChannelKey, Channel] = {
            (org.id, c.id): c for org in self.registry.organizations for c in org.channels
        }
        self.source_defs: dict[SourceKey, Source] = {
            (org.id, s.id): s for org in self.registry.organizations for s in org.sources
        }
        self.maintenance_windows = windows_by_channel(self.registry)
        # A result measured for another target, kind or check says nothing about the new
        # definition: such a channel or source starts again from unknown.
        self.redefined_channels = redefined(old_channels, self.channel_defs)
        self.redefined_sources = redefined(old_sources, self.source_defs)
        # Results are kept for what this replica probes; definitions for the whole registry.
        self.channels = {
            k: ChannelState()
            if k in self.redefined_channels
            else self.channels.get(k, ChannelState())
            for k in self.channel_defs
            if self.owns(shard_key(*k))
        }
        self.call_findings = {
            k: f for k, f in self.call_findings.items() if k in self.channels and self._calls(k)
        }
        self.sources = {
            k: SourceState() if k in self.redefined_sources else self.sources.get(k, SourceState())
            for k in self.source_defs
            if self.owns(shard_key(*k))
        }

    def set_registry(self, registry: Registry) -> None:
        """Swap in a new registry: keep state of what stays, forget what went, reset what
        was redefined (`redefined_channels`, `redefined_sources`: unknown again, findings
        of the old scan dropped), re-judge drift."""
        self.registry = registry
        old_calls = dict(self.call_findings)
        before = set(self.channel_defs)
        self._index()
        self._end_incidents(before - set(self.channel_defs), "channel removed")
        self._end_incidents(self.redefined_channels, "channel redefined")
        self._log_finding_changes(list(old_calls.values()), list(self.call_findings.values()))
        for org in {k[0] for k in set(old_calls) - set(self.call_findings)}:
            self._record_call_findings(org, time.time())
        old_findings = self.findings
        scans = {k: s.result for k, s in self.sources.items() if s.result is not None}
        self.findings = {}
        for key in scans:
            self.findings[key] = find_drift(registry, {key: scans[key]})
        for key in set(old_findings) | set(self.findings):
            self._log_finding_changes(old_findings.get(key, []), self.findings.get(key, []))

    def _end_incidents(self, keys: set[ChannelKey], note: str) -> None:
        """An open incident of a channel that left (or now measures something else) ends
        here, noted, instead of staying "ongoing" with no probe to ever close it."""
        if self.history is None:
            return
        now = time.time()
        for key in sorted(keys):
            self.history.channel_ended(*key, now, note)

    def record_reload(self, ok: bool, errors: list[str] | None = None) -> None:
        now = time.time()
        self.reload.successful = ok
        self.reload.at = now
        self.reload.counts["success" if ok else "failure"] += 1
        self.reload.errors = errors or []
        if ok:
            self.reload.succeeded_at = now

    # --- results ----------------------------------------------------------------------

    def record_channel(self, key: ChannelKey, result: ProbeResult) -> None:
        channel = self.channel_defs.get(key)
        state = self.channels.get(key)
        if channel is None or state is None:
            return  # removed by a reload while its probe was in flight
        if result.success is None:
            self._record_unmeasured(state, result)
            return
        if self._local_failure(key, result):
            return
        self._follow_call_finding(key, result)
        state.result = result
        state.skipped = None
        planned = self.in_maintenance(key, result.timestamp)
        if planned:
            # Planned work: the probe counts neither for nor against uptime; the damped
            # state still follows it, so the page shows what was measured.
            state.probes_in_maintenance += 1
        elif self.history is not None:
            self.history.probe(*key, result.timestamp, result.success, result.duration_seconds)
        if result.success:
            state.probes_ok += not planned
            state.successes_in_row, state.failures_in_row = state.successes_in_row + 1, 0
        else:
            state.probes_failed += not planned
            state.failures_in_row, state.successes_in_row = state.failures_in_row + 1, 0
        self._damp(key, channel, state, result)
        if not planned:
            self._follow_incident(key, channel, state, result)

    @staticmethod
    def _record_unmeasured(state: ChannelState, result: ProbeResult) -> None:
        """A numbering check or a skipped call measured nothing: no uptime, no up/down.
        A skip leaves the last measurement in place and is kept beside it."""
        if result.details.get("skipped"):
            state.probes_skipped += 1
            state.skipped = result
            if state.result is not None:
                return
        state.result = result

    def _local_failure(self, key: ChannelKey, result: ProbeResult) -> bool:
        """A probe that failed for the monitor's own reason (EMFILE, no memory) says nothing
        about the target: it is counted apart and leaves the channel's state as it was.
        Logged once when it starts and once when probes work again."""
        if result.reason == LOCAL_RESOURCES:
            self.local_failures += 1
            if not self._short_of_resources:
                self._short_of_resources = True
                log.warning(
                    "probes_short_of_local_resources",
                    org=key[0],
                    channel=key[1],
                    message=result.message,
                )
            return True
        if self._short_of_resources:
            self._short_of_resources = False
            log.info("probes_local_resources_recovered", skipped=self.local_failures)
        return False

    def _damp(
        self, key: ChannelKey, channel: Channel, state: ChannelState, result: ProbeResult
    ) -> None:
        defaults = self.registry.defaults
        need_ok = channel.success_threshold or defaults.success_threshold
        need_fail = channel.failure_threshold or defaults.failure_threshold
        if state.up is not True and state.successes_in_row >= need_ok:
            new = True
        elif state.up is not False and state.failures_in_row >= need_fail:
            new = False
        else:
            return
        previous, state.up, state.changed_at = state.up, new, result.timestamp
        log.info(
            "channel_up" if new else "channel_down",
            org=key[0],
            channel=key[1],
            kind=channel.kind,
            reason=result.reason,
            message=result.message,
            previous="unknown" if previous is None else ("up" if previous else "down"),
        )

    def _follow_incident(
        self, key: ChannelKey, channel: Channel, state: ChannelState, result: ProbeResult
    ) -> None:
        """Open or close the history's incident when the damped state differs from what
        history was last told. Called only for probes outside maintenance windows: a
        channel that went down inside one opens its incident at the first probe after it,
        one that came back inside one closes it there (planned work is no incident)."""
        if self.history is None or state.up is None or state.up == state.incident_up:
            return
        state.incident_up = state.up
        if state.up:
            self.history.channel_up(*key, result.timestamp)
        else:
            self.history.channel_down(
                *key, channel.kind, result.timestamp, result.reason, result.message
            )

    def _follow_call_finding(self, key: ChannelKey, result: ProbeResult) -> None:
        """Raise `deprecated_reachable` when a deprecated line rang, clear it when a call
        finds the number out of service again (`monitor.call_findings`)."""
        old = self.call_findings.get(key)
        if old is None and result.reason != REACHABLE:
            return  # the common case: nothing to follow
        new = still_reachable(old, *key, result)
        if new is None:
            self.call_findings.pop(key, None)
        else:
            self.call_findings[key] = new  # the latest SIP answer as evidence
        if (old is None) != (new is None):
            self._log_finding_changes([old] if old else [], [new] if new else [])
            self._record_call_findings(key[0], result.timestamp)

    def _record_call_findings(self, org: str, at: float) -> None:
        """The history's findings log keeps test-call findings as one more "source"."""
        if self.history is not None:
            current = tuple(f for k, f in self.call_findings.items() if k[0] == org)
            self.history.source_scanned(org, CALL_SOURCE, current, at)

    def record_source(self, key: SourceKey, result: ProbeResult) -> None:
        state = self.sources.get(key)
        if state is None or self._local_failure(key, result):
            return
        state.result = result
        if result.success:
            state.scans_ok += 1
        else:
            state.scans_failed += 1
        old = self.findings.get(key, [])
        self.findings[key] = find_drift(self.registry, {key: result})
        self._log_finding_changes(old, self.findings[key])
        if self.history is not None:
            self.history.source_scanned(*key, self.findings[key], result.timestamp)

    @staticmethod
    def _log_finding_changes(old: list[Finding], new: list[Finding]) -> None:
        for finding in sorted(set(new) - set(old), key=Finding.sort_key):
            log.warning("finding_raised", **finding.to_json())
        for finding in sorted(set(old) - set(new), key=Finding.sort_key):
            log.info("finding_cleared", **finding.to_json())

    # --- views --------------------------------------------------------------------------

    def in_maintenance(self, key: ChannelKey, at: float | None = None) -> bool:
        """Whether channel `key` is inside a maintenance window at `at` (epoch s; now)."""
        windows = self.maintenance_windows.get(key)
        if not windows:
            return False
        moment = datetime.datetime.fromtimestamp(
            at if at is not None else time.time(), datetime.UTC
        )
        return in_maintenance(windows, moment, self.registry.defaults.timezone)

    def all_findings(self) -> list[Finding]:
        """Every current finding, sorted: drift on pages and deprecated lines that ring."""
        found = [f for fs in self.findings.values() for f in fs]
        return sorted(found + list(self.call_findings.values()), key=Finding.sort_key)

    def findings_by_source(self) -> dict[SourceKey, list[Finding]]:
        """Current findings per (org, source); test-call findings under (org, CALL_SOURCE),
        present (maybe empty) for every organisation with a deprecated line on `check: sip`
        that this replica probes, so the count falls to 0 when the finding clears."""
        out = dict(self.findings)
        for key in self.channels:
            if self._calls(key):
                out.setdefault((key[0], CALL_SOURCE), [])
        for key, finding in sorted(self.call_findings.items()):
            out[(key[0], CALL_SOURCE)] = [*out.get((key[0], CALL_SOURCE), []), finding]
        return out

    def _calls(self, key: ChannelKey) -> bool:
        """Whether channel `key` is a deprecated line that test calls can find ringing."""
        channel = self.channel_defs[key]
        return channel.status == "deprecated" and getattr(channel, "check", None) == "sip"

    def first_round_done(self) -> bool:
        # A channel on push waits for an outside tester; it does not hold readiness back.
        return all(
            s.result is not None or self.channel_defs[k].check == "push"
            for k, s in self.channels.items()
        ) and all(s.result is not None for s in self.sources.values())
