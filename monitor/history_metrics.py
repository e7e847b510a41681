"""`/metrics` series about the history database: whether it is there, write errors, what
waits for a retry and what was dropped — so a full disk is an alert, not a silent gap."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.history import HistoryHealth

__all__ = ["HistoryCollector"]


class HistoryCollector(Collector):
    """Reads the daemon's `HistoryHealth` at every scrape (None: history is off)."""

    def __init__(self, health: Callable[[], HistoryHealth | None]) -> None:
        self._health = health

    def collect(self) -> Iterator[Metric]:
        health = self._health()
        if health is None:
            return
        yield GaugeMetricFamily(
            "contact_history_available",
            "1 while the history database is open; 0: the daemon runs without history.",
            value=int(health.available),
        )
        yield GaugeMetricFamily(
            "contact_history_write_failing",
            "1 while the latest write of history failed (queued writes wait for a retry).",
            value=int(health.failing),
        )
        yield CounterMetricFamily(
            "contact_history_write_errors",
            "Failed writes of queued history (full disk, deleted or read-only directory).",
            value=health.write_errors,
        )
        yield CounterMetricFamily(
            "contact_history_writes_dropped",
            "Queued history writes dropped, oldest first, while writes kept failing.",
            value=health.dropped,
        )
        yield CounterMetricFamily(
            "contact_history_recreated",
            "Times the history database file was deleted and created anew.",
            value=health.recreated,
        )
        yield GaugeMetricFamily(
            "contact_history_pending_writes",
            "History writes waiting to be written, as of the latest flush.",
            value=health.pending,
        )
