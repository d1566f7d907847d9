"""The scheduler's consumer of trainer events: each is folded into its job's
record (the rules are attempts.py's, a pure function), then acked.

Trainers never write records; they publish TrainerEvents and the scheduler,
the records' only writer, applies them here, in stream order (one consumer,
one event at a time). An event is acked only once its record is written. If
the write fails (a NATS blip, a KV timeout) the event is naked and comes
back, so no end of a job is ever lost; such a retried event may then be
folded after a later event of its job (a hand-back after the next start:
one attempt counted lost that was not, never a wrong result).
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
from services.common.jobs import state_name
from services.common.logs import job_context
from services.common.retry import TRANSIENT, retrying
from services.internal.v1 import bus_pb2, records_pb2

from . import metrics
from .attempts import Change, apply_event, failure_reason
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


class EventFolder:
    """Consumes the EVENTS stream and folds each event into its record."""

    def __init__(self, ctx: SchedulerContext):
        self.js = ctx.js
        self.jobs = ctx.jobs
        self.janitor = ctx.janitor
        self.live = ctx.live
        self.cache = FitCache(ctx)
        self.max_attempts = ctx.config.max_attempts

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
        changes: list[Change] = []
        attempts_before: list[int] = []

        def mutate(job: records_pb2.JobRecord) -> bool:
            attempts_before[:] = [job.attempts]
            changes[:] = [apply_event(job, event, self.max_attempts)]
            return changes[0] is not Change.NONE

        kind = event.WhichOneof("kind")
        try:
            job = await update_job(self.jobs, event.tenant, event.job_id, mutate)
        except Exception as exc:  # noqa: BLE001 - any failure to write: the event comes back
            delay = min(0.1 * 2**msg.metadata.num_delivered, 10.0)
            log.warning(
                "could not apply the %s event of %s (%s); retrying in %.1f s",
                kind,
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
        else:
            await self._after(job, event, changes[0], attempts_before[0])
        await _settle(msg.ack)

    async def _after(
        self, job: records_pb2.JobRecord, event: bus_pb2.TrainerEvent, change: Change, before: int
    ) -> None:
        """What follows a fold besides the record: metrics, the live-job
        counts, the followers of a cached fit, stray outputs removed."""
        if change is Change.ENDED:
            log.info("job %s ended: %s", job.id, state_name(job.state))
            metrics.ended(job, failure_reason(job, event))
            self.live.ended(job)
            self.janitor.job_ended(job)
            await self.cache.settle_followers(job)
        elif change is Change.STARTED:
            metrics.started(job, before)
            self.live.started(job)
        elif change is Change.REQUEUED:
            self.live.handed_back(job)
        elif change is Change.NONE and event.WhichOneof("kind") == "succeeded":
            if not (
                job.state == jobs_pb2.JOB_STATE_SUCCEEDED and job.output_attempt == event.attempt
            ):
                # Outputs of an attempt that does not count (a stale one, or
                # one that ended after a cancel): nobody will read them.
                self.janitor.attempt_ignored(
                    event.tenant, event.job_id, event.attempt, event.succeeded.outputs
                )


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
