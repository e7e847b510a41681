"""APScheduler jobs in step with the registry: one per channel and per source, each at its
own interval, spread over the first interval, never overlapping itself, under a global and
a per-host cap on probes in flight."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.browser import BrowserPool
from monitor.config import Channel, EmailChannel, Registry, Source, TcpChannel, WebChannel
from monitor.metrics import MonitorMetrics
from monitor.probers import (
    make_probe_context,
    probe_channel,
    probe_source,
)
from monitor.sharding import shard_key
from monitor.state import State

__all__ = ["ProbeScheduler", "TickScheduler"]

log = structlog.get_logger("monitor.scheduler")
MAX_JITTER_SECONDS = 5.0
TICK_SECONDS = 0.05  # the most a probe starts late for the scheduler's own sake


class TickScheduler(AsyncIOScheduler):
    """APScheduler's asyncio scheduler, woken by its timer at most once per tick, straight on
    the loop it runs on.

    The stock timer wakes it for each probe as it falls due, through `call_soon_threadsafe`
    (a self-pipe write and read and an extra loop pass). That was most of the daemon's own
    CPU per probe; probes that start in one pass also share the loop's passes while they
    run. See README, "Benchmark".
    """

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(
                max(wait_seconds, TICK_SECONDS), self._on_timer
            )

    def _on_timer(self) -> None:
        self._timeout = None
        self._start_timer(self._process_jobs())


def _job_id(kind: str, org: str, ident: str) -> str:
    return f"{kind}:{org}/{ident}"


def _host_of(target: Channel | Source) -> str | None:
    """The peer a probe talks to, for the per-host cap (None: no network, no cap)."""
    if isinstance(target, Source | WebChannel):
        return urlsplit(target.url).hostname
    if isinstance(target, EmailChannel):
        return target.domain
    if isinstance(target, TcpChannel):
        return target.host
    return None


class ProbeScheduler:
    """Runs the registry's probes forever and feeds their results into the state."""

    def __init__(self, state: State, metrics: MonitorMetrics, base_dir: Path) -> None:
        self.state = state
        self.metrics = metrics
        self.base_dir = base_dir
        self.scheduler = TickScheduler(
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": None,
            }
        )
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._planned: dict[str, datetime.datetime] = {}
        self._in_flight: set[asyncio.Task] = set()
        self._ctx = make_probe_context(state.registry.defaults, base_dir)
        self._limit = asyncio.Semaphore(state.registry.defaults.concurrency)
        self._host_limits: dict[str, asyncio.Semaphore] = {}
        self._hosts: dict[str, tuple[Channel | Source, str | None]] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._add_jobs(self.state.registry, self._job_specs(self.state.registry))
        self.scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling; give probes in flight their timeout to finish, then cancel."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._in_flight:
            grace = self.state.registry.defaults.timeout + 1
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._ctx.browser is not None:
            await self._ctx.browser.close()

    @property
    def browser(self) -> BrowserPool | None:
        """The daemon's one browser (for `render: browser`), kept across reloads."""
        return self._ctx.browser

    # --- registry changes ---------------------------------------------------------------

    def sync(self, old: Registry, new: Registry) -> dict[str, int]:
        """Add, remove and reschedule only the jobs whose definition changed."""
        if old.defaults != new.defaults:
            self._ctx = make_probe_context(new.defaults, self.base_dir, self._ctx.browser)
            self._limit = asyncio.Semaphore(new.defaults.concurrency)
            self._host_limits.clear()
        before, after = self._job_specs(old), self._job_specs(new)
        removed = before.keys() - after.keys()
        added = {k: v for k, v in after.items() if k not in before}
        changed = {k: v for k, v in after.items() if k in before and before[k] != v}
        for job_id in removed:
            self.scheduler.remove_job(job_id)
            self._hosts.pop(job_id, None)
        for job_id, interval in changed.items():
            self.scheduler.reschedule_job(job_id, trigger=self._trigger(job_id, interval, 0))
        self._add_jobs(new, added)
        return {"added": len(added), "removed": len(removed), "rescheduled": len(changed)}

    def _job_specs(self, registry: Registry) -> dict[str, float]:
        """Job id -> interval, for every channel and source this replica owns."""
        defaults = registry.defaults
        owns = self.state.owns
        specs: dict[str, float] = {}
        for org in registry.organizations:
            for channel in org.channels:
                if owns(shard_key(org.id, channel.id)):
                    specs[_job_id("channel", org.id, channel.id)] = (
                        channel.interval or defaults.interval
                    )
            for source in org.sources:
                if owns(shard_key(org.id, source.id)):
                    specs[_job_id("source", org.id, source.id)] = (
                        source.interval or defaults.source_interval
                    )
        return specs

    def _add_jobs(self, registry: Registry, specs: dict[str, float]) -> None:
        spread = registry.defaults.interval
        for job_id, interval in specs.items():
            # A stable offset per job spreads the first round evenly over one interval.
            offset = zlib.crc32(job_id.encode()) / 2**32 * min(spread, interval)
            self.scheduler.add_job(
                self._run,
                trigger=self._trigger(job_id, interval, offset),
                id=job_id,
                args=[job_id],
                replace_existing=True,
                next_run_time=self._now() + datetime.timedelta(seconds=offset),
            )

    def _trigger(self, job_id: str, interval: float, offset: float) -> IntervalTrigger:
        jitter = min(interval * 0.05, MAX_JITTER_SECONDS)
        return IntervalTrigger(
            seconds=interval,
            jitter=jitter or None,
            start_date=self._now() + datetime.timedelta(seconds=offset),
        )

    @staticmethod
    def _now() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    # --- running one job ----------------------------------------------------------------

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self._planned[event.job_id] = event.scheduled_run_times[-1]

    async def _run(self, job_id: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._probe(job_id)
        except Exception:  # a job must never kill the scheduler's loop
            log.exception("job_failed", job=job_id)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _probe(self, job_id: str) -> None:
        kind, _, path = job_id.partition(":")
        org, _, ident = path.partition("/")
        defs = self.state.channel_defs if kind == "channel" else self.state.source_defs
        target = defs.get((org, ident))
        if target is None:
            return  # removed by a reload after this run was submitted
        planned = self._planned.pop(job_id, None)
        host_limit = self._host_limit(self._host_for(job_id, target))
        ctx = self._ctx
        # A rendered page queues for the browser's own pages (defaults.browser.concurrency);
        # waiting there must not hold a slot that other probes need.
        rendered = getattr(target, "render", None) == "browser"
        async with contextlib.nullcontext() if rendered else self._limit, host_limit:
            if planned is not None:
                lag = max(0.0, (self._now() - planned).total_seconds())
                self.metrics.observe_lag(kind, lag)
            started = time.monotonic()
            if kind == "channel":
                result = await probe_channel(target, ctx)
                self.state.record_channel((org, ident), result)
            else:
                result = await probe_source(target, ctx)
                self.state.record_source((org, ident), result)
        log.debug(
            "probe_finished",
            job=job_id,
            success=result.success,
            reason=result.reason,
            duration=round(time.monotonic() - started, 4),
        )

    def _host_for(self, job_id: str, target: Channel | Source) -> str | None:
        """`_host_of`, parsed once per definition of the target rather than at every run."""
        known = self._hosts.get(job_id)
        if known is None or known[0] is not target:
            known = self._hosts[job_id] = (target, _host_of(target))
        return known[1]

    def _host_limit(self, host: str | None) -> asyncio.Semaphore | contextlib.nullcontext:
        if host is None:
            return contextlib.nullcontext()
        if host not in self._host_limits:
            per_host = self.state.registry.defaults.per_host_concurrency
            self._host_limits[host] = asyncio.Semaphore(per_host)
        return self._host_limits[host]
