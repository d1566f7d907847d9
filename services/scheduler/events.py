"""The scheduler's consumer of trainer events: they are folded into their
jobs' records (the rules are attempts.py's, a pure function), then acked.

Trainers never write records; they publish TrainerEvents and the scheduler,
the records' only writer, applies them here, in stream order, a fetch at a
time: the events of one fetch are grouped by job, each job's record is read
once, all its events are applied to it in order and it is written once (a
burst of small jobs sends a start and an end per job: one write, not two,
when both are in the fetch); jobs are folded concurrently, their records
being independent, so their KV round trips share the NATS client's writes.
An event is acked only once its record is written. If the write fails (a
NATS blip, a KV timeout) the job's events are naked and come back, so no
end of a job is ever lost; such retried events may then be folded after a
later event of their job (a hand-back after the next start: one attempt
counted lost that was not, never a wrong result).
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
from services.common.config import SMALL_LANE
from services.common.jobs import state_name
from services.common.logs import job_context
from services.common.retry import TRANSIENT, retrying
from services.internal.v1 import bus_pb2, records_pb2

from . import metrics
from .attempts import Change, apply_event, failure_reason
from .context import SchedulerContext
from .fit_cache import FitCache
from .held_starts import HeldStarts
from .store import known_lane, update_job

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
        self.held = HeldStarts()

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
                    msgs = await sub.fetch(batch=128, timeout=self.held.wait(FETCH_WAIT_SECONDS))
                except asyncio.TimeoutError:
                    failing_since = None
                    await self.fold_batch([])  # held starts whose time is up
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
                await self.fold_batch(msgs)
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await self.fold_batch([], everything=True)
                await sub.unsubscribe()

    async def fold_batch(self, msgs: list[Msg], everything: bool = False) -> None:
        """Fold one fetch: each job's events in stream order, the jobs at
        once; a small job's lone start is held back for its end
        (held_starts.py), and held ones are folded when due (`everything`:
        now)."""
        by_job: dict[tuple[str, str], list[tuple[Msg, bus_pb2.TrainerEvent]]] = {}
        for msg in msgs:
            try:
                event = bus_pb2.TrainerEvent.FromString(msg.data)
            except DecodeError:
                log.error("dropping an event that is not a TrainerEvent on %s", msg.subject)
                await _settle(msg.ack)
                continue
            by_job.setdefault((event.tenant, event.job_id), []).append((msg, event))
        self.held.take(by_job, lambda job: known_lane(self.jobs, *job) == SMALL_LANE, everything)
        await asyncio.gather(*(self._fold_job(*job, events) for job, events in by_job.items()))

    async def _fold_job(
        self, tenant: str, job_id: str, events: list[tuple[Msg, bus_pb2.TrainerEvent]]
    ) -> None:
        """Apply a job's events to its record in one write; ack them once it
        is written, nak them for redelivery when it could not be."""
        folded: list[tuple[bus_pb2.TrainerEvent, Change, int]] = []

        def mutate(job: records_pb2.JobRecord) -> bool:
            folded.clear()  # a compare-and-set retry applies them all again
            for _, event in events:
                before = job.attempts
                folded.append((event, apply_event(job, event, self.max_attempts), before))
            return any(change is not Change.NONE for _, change, _ in folded)

        msgs = [msg for msg, _ in events]
        with job_context(job_id), _traced(msgs):
            try:
                job = await update_job(self.jobs, tenant, job_id, mutate)
            except Exception as exc:  # noqa: BLE001 - any failure to write: the events come back
                delay = min(0.1 * 2 ** msgs[0].metadata.num_delivered, 10.0)
                kinds = ", ".join(event.WhichOneof("kind") or "?" for _, event in events)
                log.warning(
                    "could not apply the events (%s) of %s (%s); retrying in %.1f s",
                    kinds,
                    job_id,
                    exc,
                    delay,
                )
                await _settle_all(msgs, "nak", delay=delay)
                return
            if job is None:
                await self._no_record(job_id, msgs)
                return
            for event, change, before in folded:
                await self._after(job, event, change, before)
            await _settle_all(msgs, "ack")

    async def _no_record(self, job_id: str, msgs: list[Msg]) -> None:
        """The record is written while the job is published, so a quick
        trainer can report before it is visible: retried for a while, then
        dropped as belonging to no job."""
        retry = [msg for msg in msgs if msg.metadata.num_delivered < UNKNOWN_JOB_RETRIES]
        if len(retry) < len(msgs):
            log.warning("dropping events of %s: no such job", job_id)
        await _settle_all(retry, "nak", delay=0.05)
        await _settle_all([msg for msg in msgs if msg not in retry], "ack")

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


@contextlib.contextmanager
def _traced(msgs: list[Msg]):
    """A process span in the job's trace for each event the trainer traced
    (state changes; progress updates are not, or a long fit would fill its
    trace with them), open while the job's events are folded."""
    with contextlib.ExitStack() as spans:
        for msg in msgs:
            if tracing.TRACEPARENT in (msg.headers or {}):
                spans.enter_context(
                    tracing.process_span(msg.subject, msg.headers, bus.SCHEDULER_CONSUMER)
                )
        yield


async def _settle_all(msgs: list[Msg], how: str, **kwargs) -> None:
    """Ack or nak each of `msgs` (one write for all: they are buffered by
    the NATS client and flushed together)."""
    for msg in msgs:
        await _settle(getattr(msg, how), **kwargs)


async def _settle(action, **kwargs) -> None:
    """Ack or nak; if that fails the event is redelivered after the ack
    deadline and applied again, which changes nothing the second time."""
    try:
        await action(**kwargs)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not settle an event message: %s", exc)
