"""Where each queued job stands: its place in its lane and about how long
until it starts, written into its record, so GetJob, WatchJob and
`fityard watch` show it ("queued: 3rd in line, about 40 s").

Every UPDATE_SECONDS a pass reads the lanes' queues from the scheduler's
view of live jobs (live_jobs.py: no record is read) and writes the figures
of the first SHOWN jobs of each lane whose figures changed, with a
compare-and-set that touches only records still QUEUED (a trainer's news is
never overwritten; apply_event clears the figures when a job starts).

The estimate is the jobs ahead of it, divided among the trainers alive
(their status entries, services/trainer/status.py), times the typical run
of the lane's recent jobs (a lane's jobs are alike by construction: small
or not): crude, and said to be an estimate. Unknown (0) until a job of the
lane has run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from fityard.v1 import jobs_pb2
from services.common.resources import JOBS
from services.internal.v1 import records_pb2

from .context import SchedulerContext
from .store import update_job

log = logging.getLogger(__name__)

UPDATE_SECONDS = 1.0
# Jobs of a lane whose place is kept up to date; those further back show
# nothing until they come this close (a long queue costs no more writes).
SHOWN = 200
# Estimates are rounded to this many seconds, so a record is not rewritten
# for a change nobody would notice.
ESTIMATE_STEP = 5.0
# A job queued for less than this is about to start, most likely: its place
# is not written (no KV write races the trainer's start on the hot path).
SETTLE_SECONDS = 1.0
# How often the number of live trainers is read again (a KV listing).
TRAINERS_EVERY_SECONDS = 10.0
# Places up to this one are shown exactly, every pass; further back a job's
# figures are rewritten when they moved by a tenth since last written, and at
# most every REWRITE_SECONDS: a queue of hundreds moving at tens of jobs a
# second would otherwise rewrite every record every pass (measured: most of
# the scheduler's and nats-server's CPU in a burst of tiny jobs), for changes
# nobody reads ("199 ahead" or "180").
EXACT_UP_TO = 10
CLOSE_ENOUGH = 0.1
REWRITE_SECONDS = 5.0


def worth_writing(
    shown: tuple[int, float, float] | None, figures: tuple[int, float], now: float
) -> bool:
    """Whether (position, wait) differ enough from what the record shows
    (`shown`: position, wait and when they were written)."""
    if shown is None:
        return True
    old_position, old_wait, written = shown
    position, wait = figures
    if position <= EXACT_UP_TO:
        return (old_position, old_wait) != figures
    if now - written < REWRITE_SECONDS:
        return False
    return abs(position - old_position) >= CLOSE_ENOUGH * old_position or abs(
        wait - old_wait
    ) >= max(ESTIMATE_STEP, CLOSE_ENOUGH * old_wait)


def estimate(position: int, trainers: int, typical_run: float | None) -> float:
    """Seconds until the job at `position` (1: next) starts; 0 if unknown."""
    if typical_run is None:
        return 0.0
    rounds = math.ceil(position / max(1, trainers))
    seconds = rounds * typical_run
    return max(ESTIMATE_STEP, ESTIMATE_STEP * round(seconds / ESTIMATE_STEP))


def describe(position: int, wait: float) -> str:
    """The progress message of a queued job."""
    place = "next in line" if position == 1 else f"{position - 1} job(s) ahead in its queue"
    return f"queued: {place}" + (f", starting in about {wait:.0f} s" if wait else "")


class QueueBoard:
    def __init__(self, ctx: SchedulerContext, trainers: KeyValue):
        self.jobs = ctx.jobs
        self.live = ctx.live
        self.trainers = trainers
        self._shown: dict[tuple[str, str], tuple[int, float, float]] = {}
        self._trainers = 0
        self._trainers_read = -math.inf

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.update()
            except Exception as exc:  # noqa: BLE001 - figures only: the next pass tries again
                log.warning("could not update queue positions (%s)", exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=UPDATE_SECONDS)
            except asyncio.TimeoutError:
                pass

    async def update(self) -> int:
        """One pass; the number of records written. Nothing is read or
        written while no job has waited SETTLE_SECONDS."""
        queues = self.live.queues(waited=SETTLE_SECONDS)
        if not queues:
            self._shown = {}
            return 0
        trainers = await self._trainers_alive()
        written = 0
        now = time.monotonic()
        shown: dict[tuple[str, str], tuple[int, float, float]] = {}
        for lane, queue in queues.items():
            typical = self.live.typical_run(lane)
            for position, (key, settled) in enumerate(queue[:SHOWN], start=1):
                if not settled:
                    continue  # written once it has waited
                figures = (position, estimate(position, trainers, typical))
                before = self._shown.get(key)
                if worth_writing(before, figures, now):
                    written += await self._write(key, *figures)
                    shown[key] = (*figures, now)
                else:
                    shown[key] = before
        self._shown = shown
        return written

    async def _write(self, key: tuple[str, str], position: int, wait: float) -> int:
        tenant, job_id = key

        def place(job: records_pb2.JobRecord) -> bool:
            if job.state != jobs_pb2.JOB_STATE_QUEUED or job.cached_from:
                return False
            if (job.queue_position, job.estimated_wait_seconds) == (position, wait):
                return False
            job.queue_position = position
            job.estimated_wait_seconds = wait
            job.progress_message = describe(position, wait)
            return True

        job = await update_job(self.jobs, tenant, job_id, place)
        if job is None:
            log.debug("%s left the queue before its place was written", JOBS.name(job_id))
        return int(job is not None and job.queue_position == position)

    async def _trainers_alive(self) -> int:
        """Live trainers (their status entries), read at most every
        TRAINERS_EVERY_SECONDS: listing a bucket's keys is a consumer of
        its own on the NATS server."""
        now = time.monotonic()
        if now - self._trainers_read >= TRAINERS_EVERY_SECONDS:
            try:
                self._trainers = len(await self.trainers.keys())
            except NoKeysError:
                self._trainers = 0
            self._trainers_read = now
        return self._trainers
