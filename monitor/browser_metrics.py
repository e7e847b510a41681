"""Metrics of the daemon's browser, read from the pool at scrape time (no /proc reads
then: memory is the latest reading the pool took after a check or while watching)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor.browser import BrowserPool

__all__ = ["BrowserCollector"]


class BrowserCollector:
    """`contact_browser_*`: whether Chromium runs, how often it was started (restarts after
    a crash or the memory cap count), its memory and the pages open now."""

    def __init__(self, pool: BrowserPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "contact_browser_running",
            "1 while the headless Chromium for render: browser runs",
            value=1.0 if self.pool.running else 0.0,
        )
        yield CounterMetricFamily(
            "contact_browser_starts",
            "Headless Chromium starts, restarts after a crash or the memory cap included",
            value=float(self.pool.launches),
        )
        yield GaugeMetricFamily(
            "contact_browser_pages_open", "Rendered checks in progress", value=self.pool.pages_open
        )
        if self.pool.last_memory_bytes is not None:
            yield GaugeMetricFamily(
                "contact_browser_memory_bytes",
                "The browser's processes' summed PSS at the latest reading",
                value=float(self.pool.last_memory_bytes),
            )
