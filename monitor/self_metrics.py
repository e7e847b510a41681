"""`/metrics` series about the daemon's own resources: the web side's client connections
against their cap, connections refused over it, and probes that failed for the monitor's
own lack of resources (not counted against any target)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.connections import CappedListener
from monitor.state import State

__all__ = ["SelfCollector"]


class SelfCollector(Collector):
    def __init__(self, state: State, listener: CappedListener) -> None:
        self.state = state
        self.listener = listener

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "contact_web_connections",
            "Client connections open on the daemon's web endpoints.",
            value=self.listener.open_clients,
        )
        yield GaugeMetricFamily(
            "contact_web_connections_max",
            "Cap on client connections, kept below the open-files limit with room for probes.",
            value=self.listener.cap,
        )
        yield CounterMetricFamily(
            "contact_web_connections_rejected",
            "Client connections closed at once because the cap was reached.",
            value=self.listener.rejected,
        )
        yield CounterMetricFamily(
            "contact_probes_local_failures",
            "Probes that failed for the monitor's own lack of resources (EMFILE, memory); "
            "not counted against their channel (reason local_resources).",
            value=self.state.local_failures,
        )
