"""One attempt at a job: the message a trainer was handed, the job, the
attempt's number, and how it ends.

An attempt reports to the scheduler (TrainerEvents on the EVENTS stream,
one kind per message: protos/services/internal/v1/bus.proto) and settles
its message with JetStream. What it reports and how it settles are decided
together, as an `Ending`, and done in one place (`Attempt.end`), in that
order: the event is accepted by JetStream before the message is acked, so
a trainer that dies in between leaves a job that comes back and finds its
record ended, never one that ended without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from google.protobuf.message import Message
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from fityard.v1 import jobs_pb2
from ml.messages import bounded
from services.common import bus
from services.common.jobs import FAILED_TIMEOUT, OUTPUTS
from services.common.records import now
from services.common.retry import retrying
from services.common.tracing import send_span, with_trace_headers
from services.internal.v1 import bus_pb2, records_pb2

from .worker import Outcome

log = logging.getLogger(__name__)

# How long an event publish is retried before the job is handed back.
REPORT_WITHIN_SECONDS = 120.0
# How long an ack, nak or heartbeat is retried; after that JetStream's ack
# deadline decides (the job comes back, and its record says what happened).
SETTLE_WITHIN_SECONDS = 5.0

ACK, NAK = "ack", "nak"


@dataclass(frozen=True)
class Ending:
    """How an attempt ends: the event the scheduler is told (a TrainerEvent
    kind and its message; none if there is nothing to say) and what
    JetStream is told (ack: done with; nak: deliver again; neither: the
    message is another attempt's now)."""

    kind: str | None
    body: Message | None
    settle: str | None


def succeeded(outcome: Outcome, kind: int, seconds: float) -> Ending:
    return Ending(
        "succeeded",
        bus_pb2.JobSucceeded(
            outputs=OUTPUTS[kind],
            rows=outcome.rows,
            message=f"done in {seconds:.1f}s",
            features=outcome.features,
            model_sha256=outcome.model_sha256,
            metrics=jobs_pb2.FitMetrics.FromString(outcome.metrics),
        ),
        ACK,
    )


def failed(error: str, reason: str) -> Ending:
    return Ending("failed", bus_pb2.JobFailed(error=bounded(error), reason=reason), ACK)


def timed_out(limit: float) -> Ending:
    return failed(
        f"timed out after {limit:.0f} s (the job's limit); submit it again with a larger "
        "timeout_seconds, or with less data or fewer iterations (max_iter)",
        FAILED_TIMEOUT,
    )


def cancelled() -> Ending:
    return Ending("cancelled", bus_pb2.JobCancelled(), ACK)


def handed_back(trainer_id: str) -> Ending:
    """Shutting down (scale-in, restart): another trainer takes the job at
    once; the attempt ended cleanly and costs nothing."""
    message = f"returned to the queue: trainer {trainer_id} is shutting down"
    return Ending("handed_back", bus_pb2.AttemptHandedBack(message=message), NAK)


def worker_died(error: str) -> Ending:
    """A lost attempt: the scheduler retries the job or fails it."""
    return Ending("worker_died", bus_pb2.AttemptWorkerDied(error=bounded(error)), NAK)


def ended_elsewhere() -> Ending:
    """The record says the job is over (cancelled, perhaps while it waited
    for a core) or gone: nothing to report, the message is done with."""
    return Ending(None, None, ACK)


def not_started() -> Ending:
    """Stopping before the attempt started: nothing to report or count."""
    return Ending(None, None, NAK)


def superseded() -> Ending:
    """A newer attempt of the job runs elsewhere (this one lost its message
    to a redelivery): stop without a word, the message is not ours."""
    return Ending(None, None, None)


def outcome_ending(outcome: Outcome, kind: int, seconds: float) -> Ending:
    """The Ending of an attempt whose worker returned `outcome`."""
    if outcome.ok:
        return succeeded(outcome, kind, seconds)
    if outcome.died:
        return worker_died(outcome.error)
    return failed(outcome.error, outcome.reason)


class Attempt:
    """A job message in a trainer's hands. `number` is 0 until the attempt
    has one: the task's first attempt on a first delivery, else the number
    the scheduler gave its claim (trainer/claims.py)."""

    def __init__(self, msg: Msg, task: bus_pb2.JobTask, js: JetStreamContext, trainer_id: str):
        self.msg = msg
        self.task = task
        self.job: records_pb2.JobRecord = task.job
        self.js = js
        self.trainer_id = trainer_id
        self.number = 0
        self.started = time.monotonic()
        # A first delivery's start report, on its way while the job runs.
        self._start_report: asyncio.Task | None = None

    @property
    def first_delivery(self) -> bool:
        """Whether it may run as the task's first attempt without asking: the
        message's first delivery (the scheduler numbered it when publishing)."""
        return self.msg.metadata.num_delivered == 1 and self.task.first_attempt > 0

    @property
    def delivery(self) -> records_pb2.Delivery:
        return records_pb2.Delivery(
            stream_sequence=self.msg.metadata.sequence.stream,
            count=self.msg.metadata.num_delivered,
        )

    async def report_started(self, cores: int, message: str) -> None:
        """Report the start; a redelivery (number 0) claims its number and
        waits for JetStream to take the claim. A numbered attempt does not
        wait: the job runs while the report is on its way (a small job's
        start and end then reach the scheduler together, one record write),
        and `end` waits for it before reporting the end, so the end is
        never accepted without its start."""
        self.started = time.monotonic()
        body = bus_pb2.AttemptStarted(delivery=self.delivery, cores=cores, message=message)
        if not self.number:
            await self.report("started", body)
            return
        self._start_report = asyncio.create_task(self.report("started", body))

    async def reported_start(self) -> None:
        """Wait for the start report to be accepted (raises if it was not)."""
        if self._start_report is not None:
            await self._start_report

    async def report_progress(self, fraction: float, message: str) -> None:
        body = bus_pb2.AttemptProgress(fraction=fraction, message=bounded(message))
        await self.report("progress", body)

    async def report(self, kind: str, body: Message) -> None:
        """Publish one TrainerEvent, retrying NATS blips; JetStream's ack
        means the scheduler will see it, even if it is down right now."""
        event = bus_pb2.TrainerEvent(
            job_id=self.job.id,
            tenant=self.job.tenant,
            trainer_id=self.trainer_id,
            attempt=self.number,
            time=now(),
        )
        getattr(event, kind).CopyFrom(body)
        data = event.SerializeToString()
        subject = bus.event_subject(self.job.tenant, self.job.id)
        headers = {bus.HDR_TENANT: self.job.tenant, bus.HDR_JOB_ID: self.job.id}
        # Every kind but progress changes the job's state: traced, in the
        # job's trace (progress would fill a long fit's trace).
        traced = kind != "progress"
        with send_span(subject) if traced else contextlib.nullcontext():
            if traced:
                with_trace_headers(headers)
            await retrying(
                lambda: self.js.publish(subject, data, headers=headers),
                f"reporting {kind} for {self.job.id}",
                within=REPORT_WITHIN_SECONDS,
            )

    async def end(self, ending: Ending) -> None:
        """Report the ending (if it says anything), then settle the message."""
        await self.reported_start()
        if ending.kind is not None:
            await self.report(ending.kind, ending.body)
        if ending.settle == ACK:
            await self.ack()
        elif ending.settle == NAK:
            await self.nak()

    async def ack(self) -> None:
        await settle(self.msg.ack)

    async def nak(self, delay: float | None = None) -> None:
        await settle(self.msg.nak, delay=delay)

    async def heartbeat(self) -> None:
        """Tell JetStream the message is still being worked on (resets its
        ack deadline), so a long job is never redelivered while it runs."""
        await settle(self.msg.in_progress)


async def settle(action, **kwargs) -> None:
    """Ack, nak or heartbeat, retrying a NATS blip briefly. If it still
    fails, JetStream redelivers the job after the ack deadline, and the next
    trainer finds the record ended (or its claim counts the attempt lost):
    nothing is lost, so the failure is logged, not raised."""
    try:
        await retrying(
            lambda: action(**kwargs),
            "acknowledging a job message",
            within=SETTLE_WITHIN_SECONDS,
        )
    except Exception as exc:  # noqa: BLE001
        log.warning("could not settle a job message: %s", exc)
