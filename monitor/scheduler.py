"""APScheduler jobs in step with the registry: one per channel and per source, each at its
own interval, spread over the first interval, never overlapping itself, under a global and
a per-host cap on probes in flight."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.browser import BrowserPool
from monitor.config import (
    Channel,
    Defaults,
    Registry,
    Source,
)
from monitor.metrics import MonitorMetrics
from monitor.model import ProbeResult
from monitor.probers import (
    HostLimits,
    ProbeContext,
    make_probe_context,
    peer_host,
    probe_channel,
    probe_source,
)
from monitor.push import overdue_push
from monitor.redefined import redefined, same_measurement
from monitor.sharding import shard_key
from monitor.sip.budget import CallBudget
from monitor.state import State

__all__ = ["ProbeScheduler", "SyncPlan", "TickScheduler"]

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


@dataclass(frozen=True)
class SyncPlan:
    """A registry change ready to swap in: the new context (None: defaults unchanged),
    job id -> interval before and after, and the jobs whose target was redefined (what
    they measure changed: they run again within the first-round spread)."""

    new: Registry
    ctx: ProbeContext | None
    before: dict[str, float]
    after: dict[str, float]
    redefined: frozenset[str] = frozenset()


class _NoSkipMessages(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances" line: the
    scheduler logs `probe_overran` once per overrun instead, naming the channel."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


_SKIP_FILTER = _NoSkipMessages()


def _longest_timeout(state: State) -> float:
    """The longest timeout of any channel or source: what a probe in flight may still need."""
    timeouts = [getattr(t, "timeout", None) for t in state.channel_defs.values()]
    timeouts += [getattr(t, "timeout", None) for t in state.source_defs.values()]
    return max([t for t in timeouts if t] + [state.registry.defaults.timeout])


def _job_id(kind: str, org: str, ident: str) -> str:
    return f"{kind}:{org}/{ident}"


def _targets(registry: Registry) -> dict[str, Channel | Source]:
    """Job id -> the channel or source it probes, over the whole registry."""
    targets: dict[str, Channel | Source] = {}
    for org in registry.organizations:
        for channel in org.channels:
            targets[_job_id("channel", org.id, channel.id)] = channel
        for source in org.sources:
            targets[_job_id("source", org.id, source.id)] = source
    return targets


def channel_interval(channel: Channel, defaults: Defaults) -> float:
    """The channel's own interval, else the default one; a SIP test call without its own
    interval is spread so that `max_calls_per_day` lasts the whole day (48 a day: every
    30 minutes) instead of being spent in the first hour."""
    if channel.interval:
        return channel.interval
    if channel.kind == "phone" and channel.check == "sip" and channel.sip.mode == "call":
        limit = channel.sip.max_calls_per_day
        limit = defaults.sip.max_calls_per_day if limit is None and defaults.sip else limit
        if limit:
            return max(defaults.interval, 86400.0 / limit)
    return defaults.interval


class ProbeScheduler:
    """Runs the registry's probes forever and feeds their results into the state."""

    def __init__(self, state: State, metrics: MonitorMetrics, base_dir: Path) -> None:
        self.state = state
        self.metrics = metrics
        self.base_dir = base_dir
        self.scheduler = TickScheduler(
            # Jobs are planned in UTC: the process's TZ or /etc/localtime (unset, broken,
            # missing in a container) must never stop the daemon; hours use the registry's zone.
            timezone=datetime.UTC,
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": None,
            },
        )
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.add_listener(self._on_overrun, EVENT_JOB_MAX_INSTANCES)
        logging.getLogger("apscheduler.scheduler").addFilter(_SKIP_FILTER)  # once: a set
        self._overran: set[str] = set()  # jobs whose overrun is logged already
        self._skipped: set[str] = set()  # jobs with a run skipped while this run went on
        self._planned: dict[str, datetime.datetime] = {}
        self._in_flight: set[asyncio.Task] = set()
        # Test calls are counted in the history database, so a restart keeps the budget.
        self._call_budget = CallBudget(state.history.path) if state.history else None
        self._ctx = make_probe_context(
            state.registry.defaults, base_dir, call_budget=self._call_budget
        )
        self._limit = asyncio.Semaphore(state.registry.defaults.concurrency)
        self._host_limits = HostLimits(state.registry.defaults.per_host_concurrency)
        self._hosts: dict[str, tuple[Channel | Source, str | None]] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._add_jobs(self.state.registry, self._job_specs(self.state.registry))
        self.scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling; give probes in flight their timeout to finish, then cancel.

        APScheduler's own shutdown cancels the coroutines it runs, so it is paused first
        (no new runs) and shut down only once the probes in flight are done.
        """
        if self.scheduler.running:
            self.scheduler.pause()
        if self._in_flight:
            grace = _longest_timeout(self.state) + 0.5
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._ctx.browser is not None:
            await self._ctx.browser.close()

    @property
    def browser(self) -> BrowserPool | None:
        """The daemon's one browser (for `render: browser`), kept across reloads."""
        return self._ctx.browser

    # --- registry changes ---------------------------------------------------------------

    def sync(self, old: Registry, new: Registry) -> dict[str, int]:
        """Add, remove and reschedule only the jobs whose definition changed."""
        return self.apply(self.prepare(old, new))

    def prepare(self, old: Registry, new: Registry) -> SyncPlan:
        """Everything `new` needs (SSL context, resolver, the job diff), built without
        touching what runs, so a failure here (a CA bundle that is not PEM) changes nothing.
        Safe in a worker thread; raises what building raises."""
        ctx = (
            make_probe_context(
                new.defaults, self.base_dir, self._ctx.browser, call_budget=self._call_budget
            )
            if old.defaults != new.defaults
            else None
        )
        changed = redefined(_targets(old), _targets(new))
        return SyncPlan(new, ctx, self._job_specs(old), self._job_specs(new), frozenset(changed))

    def apply(self, plan: SyncPlan) -> dict[str, int]:
        """Swap in a prepared plan (on the loop): adds, removes, reschedules."""
        if plan.ctx is not None:
            self._ctx = plan.ctx
            self._limit = asyncio.Semaphore(plan.new.defaults.concurrency)
            self._host_limits = HostLimits(plan.new.defaults.per_host_concurrency)
        before, after = plan.before, plan.after
        removed = before.keys() - after.keys()
        added = {k: v for k, v in after.items() if k not in before}
        changed = {k: v for k, v in after.items() if k in before and before[k] != v}
        remeasured = {k: after[k] for k in plan.redefined if k in after and k in before}
        for job_id in removed:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id)
            self._hosts.pop(job_id, None)
        for job_id, interval in changed.items():
            if job_id not in remeasured:
                self.scheduler.reschedule_job(job_id, trigger=self._trigger(job_id, interval, 0))
        # A redefined target's old result is gone: measure the new one soon, not one
        # (possibly long) interval later.
        self._add_jobs(plan.new, remeasured)
        changed.update(remeasured)
        self._add_jobs(plan.new, added)
        return {"added": len(added), "removed": len(removed), "rescheduled": len(changed)}

    def _job_specs(self, registry: Registry) -> dict[str, float]:
        """Job id -> interval, for every channel and source this replica owns."""
        defaults = registry.defaults
        owns = self.state.owns
        specs: dict[str, float] = {}
        for org in registry.organizations:
            for channel in org.channels:
                if owns(shard_key(org.id, channel.id)):
                    specs[_job_id("channel", org.id, channel.id)] = channel_interval(
                        channel, defaults
                    )
            for source in org.sources:
                if owns(shard_key(org.id, source.id)):
                    specs[_job_id("source", org.id, source.id)] = (
                        source.interval or defaults.source_interval
                    )
        return specs

    def _add_jobs(self, registry: Registry, specs: Mapping[str, float]) -> None:
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

    def _on_overrun(self, event: JobSubmissionEvent) -> None:
        """A run fell due while the last one still ran: logged once, until a run of the job
        ends within its interval again."""
        self._skipped.add(event.job_id)
        if event.job_id in self._overran:
            return
        self._overran.add(event.job_id)
        kind, _, path = event.job_id.partition(":")
        org, _, ident = path.partition("/")
        log.warning(
            "probe_overran",
            **{"org": org, kind: ident},
            message=f"the probe of {kind} {path} is still running when its next run is due; "
            "that run is skipped",
        )

    async def _run(self, job_id: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._probe(job_id)
        except Exception:  # a job must never kill the scheduler's loop
            log.exception("job_failed", job=job_id)
        finally:
            if job_id in self._skipped:
                self._skipped.discard(job_id)
            else:
                self._overran.discard(job_id)
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
        host_limit = self._host_limits.of(self._host_for(job_id, target))
        ctx = self._ctx
        # A rendered page queues for the browser's own pages (defaults.browser.concurrency);
        # waiting there must not hold a slot that other probes need.
        rendered = getattr(target, "render", None) == "browser"
        async with contextlib.nullcontext() if rendered else self._limit, host_limit:
            if planned is not None:
                lag = max(0.0, (self._now() - planned).total_seconds())
                self.metrics.observe_lag(kind, lag)
            started = time.monotonic()
            if kind == "channel" and target.check == "push":
                # Pushed from outside: the job only notices when the pushes stop.
                result = overdue_push(self.state, (org, ident)) or ProbeResult(True)
                if result.reason == "push_missing":
                    self.state.record_channel((org, ident), result)
            elif kind == "channel":
                result = await probe_channel(target, ctx)
                if self._still_defined(kind, (org, ident), target):
                    self.state.record_channel((org, ident), result)
            else:
                result = await probe_source(target, ctx)
                if self._still_defined(kind, (org, ident), target):
                    self.state.record_source((org, ident), result)
        log.debug(
            "probe_finished",
            job=job_id,
            success=result.success,
            reason=result.reason,
            duration=round(time.monotonic() - started, 4),
        )

    def _still_defined(self, kind: str, key: tuple[str, str], target: Channel | Source) -> bool:
        """Whether `target`, probed before, still describes what the registry now defines
        under `key`: a reload during the probe may have redefined it, and then the result
        measured the old target."""
        defs = self.state.channel_defs if kind == "channel" else self.state.source_defs
        current: Channel | Source | None = defs.get(key)
        return current is not None and same_measurement(target, current)

    def _host_for(self, job_id: str, target: Channel | Source) -> str | None:
        """`peer_host`, parsed once per definition of the target rather than at every run."""
        known = self._hosts.get(job_id)
        if known is None or known[0] is not target:
            known = self._hosts[job_id] = (target, peer_host(target))
        return known[1]
