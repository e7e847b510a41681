"""The per-channel series, written straight as exposition text and cached per channel.

A registry of 10,000 channels makes some 200,000 samples; building a prometheus-client
sample object for each at every scrape took seconds (bench/, issue 8). Here each channel's
lines are rendered once per change of its state and reused until the next one, and every
family is assembled by joining those cached lines. The text is the same in the Prometheus
text format and in OpenMetrics but for the counter's header.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from monitor.config import Channel, PhoneChannel
from monitor.hours import in_hours
from monitor.probers.phone import numbering_details
from monitor.sharding import Shard, owner, shard_key
from monitor.state import ChannelState, State

__all__ = ["FAMILIES", "ChannelExposition"]


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # gauge or counter
    help: str

    def header(self, openmetrics: bool) -> str:
        # prometheus-client names a counter's family with _total in the text format only.
        name = self.name + "_total" if self.type == "counter" and not openmetrics else self.name
        return f"# HELP {name} {self.help}\n# TYPE {name} {self.type}\n"


FAMILIES = (
    Family("contact_channel_info", "gauge", "A channel of the registry; always 1."),
    Family("contact_channel_deprecated", "gauge", "1 when the channel is deprecated."),
    Family(
        "contact_channel_open", "gauge", "1 while the channel is open: inside its published hours."
    ),
    Family(
        "contact_channel_in_maintenance",
        "gauge",
        "1 inside a maintenance window: alerts quiet, uptime leaves the time out.",
    ),
    Family(
        "contact_channel_shard_info", "gauge", "1 with the shard that owns each registry channel."
    ),
    Family(
        "contact_probes",
        "counter",
        "Probes run, by result (maintenance: inside a maintenance window, not judged).",
    ),
    Family("contact_probe_success", "gauge", "1 when the latest probe succeeded."),
    Family("contact_probe_duration_seconds", "gauge", "Duration of the latest probe."),
    Family("contact_probe_last_run_timestamp_seconds", "gauge", "When the latest probe finished."),
    Family("contact_probe_failure_info", "gauge", "1 with the reason the latest probe failed."),
    Family("contact_channel_up", "gauge", "Damped state: 1 up, 0 down after enough failures."),
    Family(
        "contact_channel_last_change_timestamp_seconds",
        "gauge",
        "When the damped state last changed.",
    ),
    Family(
        "contact_probe_http_status_code", "gauge", "HTTP status of the latest probe's last hop."
    ),
    Family("contact_probe_http_redirects", "gauge", "Redirects followed by the latest probe."),
    Family(
        "contact_probe_tls_cert_expiry_timestamp_seconds",
        "gauge",
        "When the served certificate expires.",
    ),
    Family("contact_probe_mx_records", "gauge", "MX records of the e-mail domain."),
    Family("contact_probe_smtp_stage_info", "gauge", "1 with the last SMTP stage reached."),
    Family(
        "contact_probe_http_phase_seconds", "gauge", "Duration of each phase of the latest probe."
    ),
    # Phone lines (issue 16): the numbering plan, SIP test calls, pushes.
    Family(
        "contact_phone_number_valid",
        "gauge",
        "1 when the phone number exists in the numbering plan, 0 otherwise.",
    ),
    Family(
        "contact_probe_sip_status_code",
        "gauge",
        "SIP status of the latest test call's answer (or OPTIONS reply).",
    ),
    Family(
        "contact_probe_sip_post_dial_delay_seconds",
        "gauge",
        "Latest test call: from the INVITE to the first ringing or answer.",
    ),
    Family(
        "contact_probe_sip_q850_cause",
        "gauge",
        "Q.850 cause in the Reason header of the latest test call's answer.",
    ),
    Family(
        "contact_probes_skipped",
        "counter",
        "Probes not made (a SIP test call over max_calls_per_day), by reason.",
    ),
    Family(
        "contact_push_last_received_timestamp_seconds",
        "gauge",
        "When the latest push for the channel was accepted.",
    ),
    Family(
        "contact_probe_tls_chain_info",
        "gauge",
        "1 with the identity of the leaf certificate the latest probe was shown.",
    ),
    Family(
        "contact_probe_http_phase_info",
        "gauge",
        "1 with the last HTTP phase the latest probe reached (done when it got its answer).",
    ),
    Family(
        "contact_probe_smtp_host_info",
        "gauge",
        "1 with the MX host (and address) the latest SMTP probe ended at.",
    ),
)
_INDEX = {family.name: i for i, family in enumerate(FAMILIES)}
# Probe details that become a gauge of their own: detail key -> family.
_DETAIL_GAUGES = {
    "status_code": "contact_probe_http_status_code",
    "redirects": "contact_probe_http_redirects",
    "cert_not_after": "contact_probe_tls_cert_expiry_timestamp_seconds",
    "mx_count": "contact_probe_mx_records",
    "sip_status_code": "contact_probe_sip_status_code",
    "post_dial_delay_seconds": "contact_probe_sip_post_dial_delay_seconds",
    "q850_cause": "contact_probe_sip_q850_cause",
}


def escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_text(**labels: str) -> str:
    return ",".join(f'{name}="{escape(value)}"' for name, value in labels.items())


def number(value: float) -> str:
    """A sample value as the exposition formats write it: Python's shortest repr of the
    float (what Prometheus parses), with `+Inf`, `-Inf` and `NaN` spelt as they require.
    Cheaper than prometheus-client's `floatToGoString`, whose Go-style exponents matter
    only in `le`/`quantile` labels, never here."""
    value = float(value)
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


_INF = float("inf")
# Families that depend on the channel's definition only; the rest follow its state.
_STATIC = frozenset(
    _INDEX[name]
    for name in (
        "contact_channel_info",
        "contact_channel_deprecated",
        "contact_channel_shard_info",
        "contact_phone_number_valid",
    )
)
_DYNAMIC = tuple(i for i in range(len(FAMILIES)) if i not in _STATIC)
_SAMPLE = tuple(f.name + "_total" if f.type == "counter" else f.name for f in FAMILIES)


class _Lines:
    """The lines of one channel, by family index."""

    def __init__(self, labels: str, scoped: str) -> None:
        self.labels = labels  # the channel's own labels
        self.scoped = scoped  # the same followed by the replica's scope labels
        self.by_family = [""] * len(FAMILIES)

    def add(self, family: str, value: float, extra: str = "", scoped: bool = True) -> None:
        labels = self.scoped if scoped else self.labels
        labels = f"{labels},{extra}" if extra else labels
        i = _INDEX[family]
        self.by_family[i] += f"{_SAMPLE[i]}{{{labels}}} {number(value)}\n"


@dataclass
class _Cached:
    channel: Channel
    state: tuple[Any, ...]  # what the state's lines were rendered from
    labels: tuple[str, str]  # the channel's own labels, and those with the replica's scope


class ChannelExposition:
    """Renders the per-channel families of `state`, re-rendering only what changed.

    Each family keeps one text per channel, in a dict (channel key -> bytes) whose values
    a scrape joins in C: at 10,000 channels a scrape re-renders the quarter that changed
    since the last one, and a channel's definition-only lines only when a reload changes
    it (bench/, issue 14: `/metrics` under 250 ms)."""

    def __init__(self, state: State, scope: dict[str, str], shard: Shard) -> None:
        self.state = state
        self.scope = label_text(**scope)
        self.shard = shard
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._by_family: list[dict[tuple[str, str], bytes]] = [{} for _ in FAMILIES]
        self._defs: object = None  # the channel definitions the cache was built for

    def families(self, openmetrics: bool = False) -> Iterator[bytes]:
        """The exposition, one family a chunk, from the channels as they are now: a scrape
        never holds the whole text at once."""
        self._refresh()
        for family, texts in zip(FAMILIES, self._by_family, strict=True):
            body = b"".join(texts.values())
            if body:
                yield family.header(openmetrics).encode() + body

    def _refresh(self) -> None:
        """Re-renders channels whose definition or state changed; forgets removed ones."""
        defs = self.state.channel_defs
        if defs is not self._defs:  # a reload: channels it removed are forgotten
            self._forget(set(self._cache) - set(defs))
            self._defs = defs
        now = datetime.datetime.now(datetime.UTC)
        timezone = self.state.registry.defaults.timezone
        planned_any = self.state.maintenance_windows
        for key, channel in defs.items():
            channel_state = self.state.channels.get(key)
            # Most channels have no hours and no maintenance: skip the clock for them.
            planned = key in planned_any and self.state.in_maintenance(key, now.timestamp())
            open_now = not channel.hours or in_hours(channel.hours, now, timezone)
            stamp = _stamp(channel_state, planned, open_now)
            cached = self._cache.get(key)
            if cached is None or cached.channel is not channel:
                cached = self._cache[key] = _Cached(channel, stamp, self._labels(key, channel))
                self._write(key, self._static_lines(key, channel, cached.labels), _STATIC)
            elif cached.state == stamp:
                continue
            cached.state = stamp
            self._write(key, self._state_lines(cached.labels, channel_state, stamp), _DYNAMIC)

    def _forget(self, keys: set[tuple[str, str]]) -> None:
        for key in keys:
            del self._cache[key]
            for texts in self._by_family:
                texts.pop(key, None)

    def _write(self, key: tuple[str, str], lines: _Lines, indices: Iterable[int]) -> None:
        for i in indices:
            text = lines.by_family[i]
            if text:
                self._by_family[i][key] = text.encode()
            else:
                self._by_family[i].pop(key, None)

    def _labels(self, key: tuple[str, str], channel: Channel) -> tuple[str, str]:
        own = label_text(org=key[0], channel=key[1], kind=channel.kind, service=channel.service)
        return own, f"{own},{self.scope}" if self.scope else own

    def _static_lines(
        self, key: tuple[str, str], channel: Channel, labels: tuple[str, str]
    ) -> _Lines:
        lines = _Lines(*labels)
        extra = label_text(status=channel.status, contact=channel.contact)
        lines.add("contact_channel_info", 1, extra, scoped=False)
        lines.add("contact_channel_deprecated", channel.status == "deprecated", scoped=False)
        if self.shard.count > 1:
            shard = f"{owner(shard_key(*key), self.shard.count)}/{self.shard.count}"
            lines.add("contact_channel_shard_info", 1, label_text(owner=shard), scoped=False)
        if isinstance(channel, PhoneChannel):
            region = self.state.registry.defaults.region
            valid = numbering_details(channel, region)["number_valid"]
            lines.add("contact_phone_number_valid", valid, scoped=False)
        return lines

    @staticmethod
    def _state_lines(
        labels: tuple[str, str], channel_state: ChannelState | None, stamp: tuple[Any, ...]
    ) -> _Lines:
        lines = _Lines(*labels)
        lines.add("contact_channel_open", stamp[-1], scoped=False)
        lines.add("contact_channel_in_maintenance", stamp[-2], scoped=False)
        if channel_state is not None:
            _result_lines(lines, channel_state)
        return lines


def _stamp(channel_state: ChannelState | None, planned: bool, open_now: bool) -> tuple[Any, ...]:
    if channel_state is None:
        return (None, planned, open_now)
    s = channel_state
    counts = (s.probes_ok, s.probes_failed, s.probes_skipped, s.probes_in_maintenance)
    return (s.result, s.up, s.changed_at, counts, s.push_received_at, planned, open_now)


def _result_lines(lines: _Lines, state: ChannelState) -> None:
    lines.add("contact_probes", state.probes_ok, 'result="success"')
    lines.add("contact_probes", state.probes_failed, 'result="failure"')
    if state.skipped is not None:  # not in contact_probes: a skip is no probe result
        reason = label_text(reason=state.skipped.reason or "skipped")
        lines.add("contact_probes_skipped", state.probes_skipped, reason)
    if state.push_received_at is not None:
        lines.add("contact_push_last_received_timestamp_seconds", state.push_received_at)
    if state.probes_in_maintenance:  # most channels never have one: no series for them
        lines.add("contact_probes", state.probes_in_maintenance, 'result="maintenance"')
    result = state.result
    if result is None:
        return
    lines.add("contact_probe_duration_seconds", result.duration_seconds)
    lines.add("contact_probe_last_run_timestamp_seconds", result.timestamp)
    if result.success is None:  # nothing measured (a numbering check): neither up nor down
        return
    lines.add("contact_probe_success", result.success)
    if not result.success:
        lines.add("contact_probe_failure_info", 1, label_text(reason=result.reason or "error"))
    if state.up is not None:
        lines.add("contact_channel_up", state.up)
    if state.changed_at is not None:
        lines.add("contact_channel_last_change_timestamp_seconds", state.changed_at)
    details = result.details
    for key, family in _DETAIL_GAUGES.items():
        if key in details:
            lines.add(family, details[key])
    if "smtp_stage" in details:
        lines.add("contact_probe_smtp_stage_info", 1, label_text(stage=details["smtp_stage"]))
    for phase, seconds in (details.get("phases") or {}).items():
        lines.add("contact_probe_http_phase_seconds", seconds, label_text(phase=phase))
    _learned_lines(lines, details)


def _learned_lines(lines: _Lines, details: dict[str, Any]) -> None:
    """What a probe learned, failed or not: the leaf certificate, the phase reached, the
    MX host it ended at."""
    leaf = details.get("tls_leaf")
    if leaf:
        lines.add("contact_probe_tls_chain_info", 1, label_text(**leaf))
    if "phase" in details:
        lines.add("contact_probe_http_phase_info", 1, label_text(phase=details["phase"]))
    if "smtp_host" in details:
        host = label_text(host=details["smtp_host"], address=details.get("smtp_address") or "")
        lines.add("contact_probe_smtp_host_info", 1, host)
