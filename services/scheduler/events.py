"""Folding trainer events into job records.

Trainers never write records; they publish TrainerEvents and the scheduler,
the records' only writer, applies them here. Rules:
- A record in a terminal state never changes again, so a late or duplicated
  event (a redelivered job, a trainer finishing a job the user just
  cancelled) is ignored.
- Events carry their attempt; an attempt older than the record's is stale
  (its trainer lost the job to a redelivery) and its events are ignored, so
  it can neither end nor rewind the newer attempt. Nor can a late progress
  report of an attempt that was handed back make the job RUNNING again.
- An event is acked only once its record is written. If the write fails (a
  NATS blip, a KV timeout) the event is naked and comes back, so no
  SUCCEEDED or FAILED is ever lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg

from fityard.v1 import jobs_pb2
from services.common import bus, tracing
from services.common.jobs import TERMINAL_STATES, state_name
from services.common.logs import job_context
from services.common.retry import TRANSIENT, retrying
from services.internal.v1 import bus_pb2, records_pb2

from . import metrics
from .context import SchedulerContext
from .fit_cache import FitCache
from .store import update_job

log = logging.getLogger(__name__)

# An event for a job with no record is retried this many times (5 s in all)
# before it is dropped as belonging to no job.
UNKNOWN_JOB_RETRIES = 100
# The event loop gives up (and the scheduler exits for its supervisor to
# restart it) after NATS has failed it for this long without a break.
GIVE_UP_AFTER_SECONDS = 120.0
# How long one fetch waits for events. A stop waits for the fetch under way
# (cancelling it could strand events it had taken until their redelivery),
# so it is short: a stopping scheduler exits within this, not within a
# second; an idle scheduler asks NATS a few times a second.
FETCH_WAIT_SECONDS = 0.25


class EventLoopFailed(RuntimeError):
    """The event loop cannot go on; the scheduler must stop serving."""


def apply_event(job: records_pb2.JobRecord, event: bus_pb2.TrainerEvent) -> bool:
    """Apply `event` to `job` in place; False if it changes nothing."""
    if job.state in TERMINAL_STATES or event.attempt < job.attempts:
        return False
    job.lost_attempts = max(job.lost_attempts, event.lost_attempts)
    # Its place in the queue is the queue board's to set while it waits
    # (queue_board.py); any event means a trainer has it.
    job.queue_position = 0
    job.estimated_wait_seconds = 0.0
    if event.state == jobs_pb2.JOB_STATE_RUNNING:
        if event.attempt == job.attempts and job.state == jobs_pb2.JOB_STATE_QUEUED:
            # That attempt was handed back (the next one would be numbered
            # higher): a late progress report of it must not make the job
            # look RUNNING again, which the next trainer would count as an
            # attempt lost with a dead trainer.
            return False
        if event.attempt > job.attempts:  # a new attempt starts
            job.attempts = event.attempt
            job.start_time.CopyFrom(event.time)
        job.state = jobs_pb2.JOB_STATE_RUNNING
        job.trainer_id = event.trainer_id
        if event.cores:
            job.cores = event.cores
        job.progress = event.progress
        job.progress_message = event.progress_message
        if event.rows:
            job.rows = event.rows
        return True
    if event.state == jobs_pb2.JOB_STATE_QUEUED:
        # The attempt ended without ending the job: back in the queue.
        job.attempts = event.attempt
        job.state = jobs_pb2.JOB_STATE_QUEUED
        job.progress = 0.0
        job.progress_message = event.progress_message
        job.cores = 0
        return True
    if event.state in TERMINAL_STATES:
        job.attempts = event.attempt
        job.state = event.state
        job.end_time.CopyFrom(event.time)
        job.error = event.error
        job.progress_message = event.progress_message
        job.trainer_id = event.trainer_id or job.trainer_id
        if event.rows:
            job.rows = event.rows
        del job.outputs[:]
        job.outputs.extend(event.outputs)
        if event.state == jobs_pb2.JOB_STATE_SUCCEEDED:
            job.progress = 1.0
            job.output_attempt = event.attempt
            del job.features[:]
            job.features.extend(event.features)
            if job.kind == jobs_pb2.JOB_KIND_FIT:
                job.model_sha256 = event.model_sha256
                job.metrics.CopyFrom(event.metrics)
        return True
    log.warning("ignoring event with state %s for %s", event.state, event.job_id)
    return False


class EventFolder:
    """Consumes the EVENTS stream and folds each event into its record."""

    def __init__(self, ctx: SchedulerContext):
        self.js = ctx.js
        self.jobs = ctx.jobs
        self.janitor = ctx.janitor
        self.live = ctx.live
        self.cache = FitCache(ctx)

    async def run(self, stop: asyncio.Event) -> None:
        """Fold events until `stop` is set. Transient NATS errors are waited
        out; raises EventLoopFailed once they last GIVE_UP_AFTER_SECONDS."""
        sub = await retrying(
            lambda: self.js.pull_subscribe_bind(bus.SCHEDULER_CONSUMER, stream=bus.EVENTS_STREAM),
            "subscribing to trainer events",
            within=GIVE_UP_AFTER_SECONDS,
        )
        failing_since: float | None = None
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch=128, timeout=FETCH_WAIT_SECONDS)
                except asyncio.TimeoutError:
                    failing_since = None
                    continue
                except TRANSIENT as exc:
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > GIVE_UP_AFTER_SECONDS:
                        raise EventLoopFailed(
                            f"no trainer events for {GIVE_UP_AFTER_SECONDS:.0f} s: {exc}"
                        ) from exc
                    log.warning("fetching trainer events failed (%s); retrying", exc)
                    await asyncio.sleep(1.0)
                    continue
                failing_since = None
                for msg in msgs:
                    # events.<tenant>.<job_id>: its lines name the job
                    with job_context(msg.subject.rsplit(".", 1)[-1]), _traced(msg):
                        await self.fold(msg)
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await sub.unsubscribe()

    async def fold(self, msg: Msg) -> None:
        """Apply one event; ack it once applied, nak it for redelivery when
        its record could not be written."""
        try:
            event = bus_pb2.TrainerEvent.FromString(msg.data)
        except DecodeError:
            log.error("dropping an event that is not a TrainerEvent on %s", msg.subject)
            await _settle(msg.ack)
            return
        changed: list[bool] = []
        attempts_before: list[int] = []

        def mutate(job: records_pb2.JobRecord) -> bool:
            attempts_before[:] = [job.attempts]
            changed[:] = [apply_event(job, event)]
            return changed[0]

        try:
            job = await update_job(self.jobs, event.tenant, event.job_id, mutate)
        except Exception as exc:  # noqa: BLE001 - any failure to write: the event comes back
            delay = min(0.1 * 2**msg.metadata.num_delivered, 10.0)
            log.warning(
                "could not apply %s event of %s (%s); retrying in %.1f s",
                event.state,
                event.job_id,
                exc,
                delay,
            )
            await _settle(msg.nak, delay=delay)
            return
        if job is None:
            if msg.metadata.num_delivered < UNKNOWN_JOB_RETRIES:
                # The record is written while the job is published, so a
                # quick trainer can report before it is visible: retry.
                await _settle(msg.nak, delay=0.05)
                return
            log.warning("dropping an event of %s: no such job", event.job_id)
        elif changed[0] and job.state in TERMINAL_STATES:
            log.info("job %s ended: %s", job.id, state_name(job.state))
            metrics.ended(job, event.failure_reason)
            self.live.ended(job)
            self.janitor.job_ended(job)
            await self.cache.settle_followers(job)
        elif changed[0] and job.state == jobs_pb2.JOB_STATE_RUNNING:
            metrics.started(job, attempts_before[0])
            self.live.started(job)
        elif changed[0] and job.state == jobs_pb2.JOB_STATE_QUEUED:
            self.live.handed_back(job)
        elif not changed[0] and event.outputs and event.attempt != job.attempts:
            self.janitor.attempt_ignored(event.tenant, event.job_id, event.attempt, event.outputs)
        await _settle(msg.ack)


def _traced(msg: Msg):
    """A process span in the job's trace for an event the trainer traced
    (state changes; progress updates are not, or a long fit would fill its
    trace with them)."""
    if tracing.TRACEPARENT not in (msg.headers or {}):
        return contextlib.nullcontext()
    return tracing.process_span(msg.subject, msg.headers, bus.SCHEDULER_CONSUMER)


async def _settle(action, **kwargs) -> None:
    """Ack or nak; if that fails the event is redelivered after the ack
    deadline and applied again, which changes nothing the second time."""
    try:
        await action(**kwargs)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not settle an event message: %s", exc)
