"""An attempt running in the worker process, watched until it ends.

While the worker runs, the trainer heartbeats the message (so JetStream
never redelivers a fit of hours) and, at each heartbeat, reads the record:
a job cancelled meanwhile is stopped even if its cancel notice was missed,
and an attempt the record no longer counts (a newer one started elsewhere)
stops without a word. A cancel, a shutdown or the job's time limit stops
the worker at once. Whatever ends it, the result is an `Ending`
(attempt.py) for the trainer to report and settle; nothing is reported from
here but progress, and no progress once the attempt has ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.js.kv import KeyValue

from services.common.jobs import TERMINAL_STATES, state_name
from services.common.records import get_record
from services.common.retry import TRANSIENT
from services.internal.v1 import records_pb2

from . import attempt as endings
from .attempt import Attempt, Ending
from .progress import ProgressThrottle
from .worker import Task, WorkerProcess

log = logging.getLogger(__name__)

# At most one progress report per job this often (progress.py says why).
PROGRESS_EVERY_SECONDS = 0.5


@dataclass
class Watch:
    """What can stop a running attempt, besides its own end."""

    cancel: asyncio.Event  # the user cancelled the job
    stop: asyncio.Event  # the trainer is shutting down
    heartbeat_seconds: float
    trainer_id: str


async def run_attempt(
    attempt: Attempt, worker: WorkerProcess, task: Task, jobs: KeyValue, watch: Watch
) -> Ending:
    """Run `task` in `worker` until it ends or is stopped; say how it ended."""
    progress = ProgressThrottle(attempt.report_progress, PROGRESS_EVERY_SECONDS)
    work = asyncio.create_task(worker.run(task, progress.offer))
    cancelled = asyncio.create_task(watch.cancel.wait())
    stopping = asyncio.create_task(watch.stop.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {work, cancelled, stopping},
                timeout=watch.heartbeat_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if work in done:
                seconds = time.monotonic() - attempt.started
                return endings.outcome_ending(work.result(), attempt.job.kind, seconds)
            ending = _interrupted(attempt, watch, done, cancelled, stopping)
            if ending is None:
                await attempt.heartbeat()  # still working on it
                ending = await record_says(jobs, attempt.job, attempt.number)
            if ending is not None:
                progress.close()  # no progress report after the attempt ends
                await worker.stop()
                await asyncio.gather(work, return_exceptions=True)
                return ending
    finally:
        progress.close()
        cancelled.cancel()
        stopping.cancel()


def _interrupted(attempt: Attempt, watch: Watch, done, cancelled, stopping) -> Ending | None:
    """The Ending if the attempt must stop now: cancelled, shutting down,
    or over its time limit; else None."""
    if cancelled in done:
        return endings.cancelled()
    if stopping in done:
        log.info("shutting down: returning job %s to the queue", attempt.job.id)
        return endings.handed_back(watch.trainer_id)
    limit = attempt.job.timeout_seconds
    if limit and time.monotonic() - attempt.started > limit:
        return endings.timed_out(limit)
    return None


async def record_says(jobs: KeyValue, job: records_pb2.JobRecord, number: int) -> Ending | None:
    """The Ending if the record no longer wants attempt `number` to run: the
    job has ended (cancelled, even when the cancel notice was missed), or a
    newer attempt started elsewhere; None while it does. A NATS blip is not
    a reason to stop."""
    try:
        found = await get_record(jobs, job.tenant, job.id, records_pb2.JobRecord)
    except TRANSIENT:
        return None
    if found is None:
        return None
    record = found[0]
    if record.state in TERMINAL_STATES:
        log.info("job %s has ended (%s): stopping it", job.id, state_name(record.state))
        return endings.ended_elsewhere()
    if record.attempts > number:
        log.warning(
            "job %s: attempt %d no longer counts (record: attempt %d); stopping it",
            job.id,
            number,
            record.attempts,
        )
        return endings.superseded()
    return None
