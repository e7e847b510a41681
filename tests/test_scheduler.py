"""The scheduler's timer: due probes start together, once per tick, never early."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import pytest

from monitor.scheduler import TICK_SECONDS, TickScheduler

SPREAD = 0.008  # five jobs due within 32 ms, under one tick


class Recorder:
    """A TickScheduler with five jobs a little apart, counting its passes over due jobs."""

    def __init__(self, scheduler: TickScheduler) -> None:
        self.scheduler = scheduler
        self.passes = 0
        self.lags: list[float] = []
        process_jobs = scheduler._process_jobs

        def counted() -> float | None:
            self.passes += 1
            return process_jobs()

        scheduler._process_jobs = counted  # type: ignore[method-assign]

    async def run_five_jobs(self) -> None:
        first = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=0.2)
        for i in range(5):
            planned = first + datetime.timedelta(seconds=i * SPREAD)
            self.scheduler.add_job(self._job, "date", run_date=planned, args=[planned])
        await asyncio.sleep(0)  # the wakeups that add_job asks for
        self.passes = 0
        await asyncio.sleep(0.2 + 5 * SPREAD + 3 * TICK_SECONDS)

    async def _job(self, planned: datetime.datetime) -> None:
        self.lags.append((datetime.datetime.now(datetime.UTC) - planned).total_seconds())


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    scheduler = TickScheduler()
    scheduler.start()
    yield Recorder(scheduler)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)


async def test_due_jobs_share_passes_when_they_fall_due_within_one_tick(recorder: Recorder):
    """Five jobs due 8 ms apart need at most two passes; the stock timer makes five."""
    await recorder.run_five_jobs()
    assert len(recorder.lags) == 5
    assert recorder.passes <= 2


async def test_no_job_starts_early_when_woken_by_the_tick(recorder: Recorder):
    """A pass starts only the jobs already due, so no lag is negative."""
    await recorder.run_five_jobs()
    assert len(recorder.lags) == 5
    assert min(recorder.lags) >= 0


async def test_jobs_start_within_a_tick_when_the_loop_is_idle(recorder: Recorder):
    """Waiting for the tick delays a job by at most the tick, plus the loop's own slack."""
    await recorder.run_five_jobs()
    assert len(recorder.lags) == 5
    assert max(recorder.lags) < TICK_SECONDS + 0.1
