"""Prometheus exposition: a Collector that builds every series from the state at scrape
time (channels that a reload removed vanish at once), plus the process's own metrics."""

from __future__ import annotations

import itertools
import platform
from collections.abc import Iterator
from typing import get_args

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.exposition import ChannelExposition
from monitor.model import FindingType
from monitor.sharding import Shard
from monitor.state import State

__all__ = ["MonitorMetrics", "StateCollector"]

OPENMETRICS_EOF = b"# EOF\n"
SOURCE_LABELS = ["org", "source"]
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class MonitorMetrics:
    """The registry `/metrics` serves: state series, scheduler lag, build info, process."""

    def __init__(
        self, state: State, scope: dict[str, str] | None = None, shard: Shard | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StateCollector(state, scope or {}))
        self.channels = ChannelExposition(state, scope or {}, shard or Shard(0, 1))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.scheduler_lag = Histogram(
            "contact_scheduler_lag_seconds",
            "Delay between a probe's planned start and its actual start.",
            ["job"],
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self._lag_max: dict[str, float] = {}
        self.scheduler_lag_max = Gauge(
            "contact_scheduler_lag_max_seconds",
            "Largest delay between a probe's planned and actual start since the process began.",
            ["job"],
            registry=self.registry,
        )
        Info("contact_monitor_build", "Version of contact-monitor.", registry=self.registry).info(
            {"version": __version__, "python_version": platform.python_version()}
        )

    def exposition(self, accept: str = "") -> tuple[Iterator[bytes], str]:
        """Every series, in chunks, in the format `accept` asks for; and its content type."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        rest = encoder(self.registry)
        chunks = self.channels.families(openmetrics)
        if openmetrics:  # its end marker must stay last
            tail = (rest.removesuffix(OPENMETRICS_EOF), OPENMETRICS_EOF)
            return itertools.chain(chunks, tail), content_type
        return itertools.chain(chunks, (rest,)), content_type

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """`exposition` in one piece."""
        chunks, content_type = self.exposition(accept)
        return b"".join(chunks), content_type

    def observe_lag(self, job: str, seconds: float) -> None:
        self.scheduler_lag.labels(job).observe(seconds)
        if seconds > self._lag_max.get(job, -1.0):
            self._lag_max[job] = seconds
            self.scheduler_lag_max.labels(job).set(seconds)


class _Scoped:
    """A metric family whose samples all carry this replica's scope labels (location, shard)."""

    def __init__(self, family: GaugeMetricFamily | CounterMetricFamily, values: list[str]):
        self.family = family
        self.values = values

    def add_metric(self, labels: list[str], value: float) -> None:
        self.family.add_metric([*labels, *self.values], value)


class _Families:
    """Metric families by name, created on first use, for one scrape. Families of probe
    results carry the scope labels; registry facts (`scoped=False`) do not."""

    def __init__(self, scope: dict[str, str]) -> None:
        self.items: dict[str, Metric] = {}
        self.scope = scope

    def gauge(self, name: str, doc: str, labels: list[str], scoped: bool = True) -> _Scoped:
        return self._family(GaugeMetricFamily, name, doc, labels, scoped)

    def counter(self, name: str, doc: str, labels: list[str]) -> _Scoped:
        return self._family(CounterMetricFamily, name, doc, labels, True)

    def _family(self, kind: type, name: str, doc: str, labels: list[str], scoped: bool) -> _Scoped:
        extra = dict(self.scope) if scoped else {}
        if name not in self.items:
            self.items[name] = kind(name, doc, labels=[*labels, *extra])
        return _Scoped(self.items[name], list(extra.values()))  # type: ignore[arg-type]


class StateCollector(Collector):
    """Sources, findings, objectives and the registry's own state, read at every scrape;
    never raises for a missing piece, leaves it out. Channels are `ChannelExposition`'s."""

    def __init__(self, state: State, scope: dict[str, str]) -> None:
        self.state = state
        self.scope = scope

    def collect(self) -> Iterator[Metric]:
        families = _Families(self.scope)
        self._objectives(families)
        self._sources(families)
        self._findings(families)
        self._config(families)
        yield from families.items.values()

    def _objectives(self, f: _Families) -> None:
        objective = f.gauge(
            "contact_service_availability_objective_ratio",
            "Availability objective of each service (SLO alerts compare to it).",
            ["org", "service"],
            scoped=False,
        )

        default = self.state.registry.defaults.availability_objective
        for org in self.state.registry.organizations:
            for service in sorted({c.service for c in org.channels}):
                objective.add_metric([org.id, service], org.objectives.get(service, default))

    def _sources(self, f: _Families) -> None:
        for (org, source), state in self.state.sources.items():
            labels = [org, source]
            scans = f.counter(
                "contact_source_scans", "Source page scans, by result.", [*SOURCE_LABELS, "result"]
            )
            scans.add_metric([*labels, "success"], state.scans_ok)
            scans.add_metric([*labels, "failure"], state.scans_failed)
            result = state.result
            if result is None:
                continue
            f.gauge(
                "contact_source_up", "1 when the latest scan of the page succeeded.", SOURCE_LABELS
            ).add_metric(labels, int(result.success))
            f.gauge(
                "contact_source_scan_duration_seconds",
                "Duration of the latest scan.",
                SOURCE_LABELS,
            ).add_metric(labels, result.duration_seconds)
            f.gauge(
                "contact_source_last_scan_timestamp_seconds",
                "When the latest scan finished.",
                SOURCE_LABELS,
            ).add_metric(labels, result.timestamp)
            if result.contacts is not None:
                published = f.gauge(
                    "contact_source_published_contacts",
                    "Distinct contacts the page shows, by kind.",
                    [*SOURCE_LABELS, "kind"],
                )
                published.add_metric([*labels, "phone"], len(result.contacts.phones))
                published.add_metric([*labels, "email"], len(result.contacts.emails))

    def _findings(self, f: _Families) -> None:
        counts = f.gauge(
            "contact_drift_findings", "Current drift findings, by type.", [*SOURCE_LABELS, "type"]
        )
        deprecated = f.gauge(
            "contact_deprecated_published",
            "1 while a deprecated contact is shown on a source.",
            ["org", "channel", "source"],
        )
        for (org, source), findings in self.state.findings_by_source().items():
            for kind in get_args(FindingType):
                counts.add_metric([org, source, kind], sum(x.type == kind for x in findings))
            for channel in sorted(
                {x.channel or "" for x in findings if x.type == "deprecated_published"}
            ):
                deprecated.add_metric([org, channel, source], 1)

    def _config(self, f: _Families) -> None:
        reload = self.state.reload
        f.gauge(
            "contact_config_last_reload_successful",
            "1 when the last registry (re)load succeeded.",
            [],
        ).add_metric([], int(reload.successful))
        f.gauge(
            "contact_config_last_reload_success_timestamp_seconds",
            "When the registry was last loaded successfully.",
            [],
        ).add_metric([], reload.succeeded_at)
        reloads = f.counter("contact_config_reloads", "Registry reloads, by result.", ["result"])
        for result, count in reload.counts.items():
            reloads.add_metric([result], count)
        f.gauge(
            "contact_monitor_first_round_done",
            "1 once every channel and source has been probed at least once.",
            [],
        ).add_metric([], int(self.state.first_round_done()))
