"""The trainer's job loop: pull a job from JetStream, run it as an attempt
(attempt.py) in the worker process, report to the scheduler, settle.

Guarantees, and how they are kept:
- A job is acked only after its outputs are stored and its final event is
  accepted by JetStream (Attempt.end); if the trainer dies before, the job
  comes back.
- While a job runs, the trainer heartbeats its message (running.py), so a
  fit of hours is never redelivered; if the trainer dies, the heartbeats
  stop and JetStream hands the job to another trainer after the ack deadline.
- Attempts are numbered and counted by the scheduler, not by JetStream's
  deliveries: a first delivery runs as the number in its task; a
  redelivery claims one and runs only once the scheduler has answered
  (claims.py), so whether the attempt before it was lost is the scheduler's
  call (scheduler/attempts.py). Handing a job back (shutdown) or waiting for
  a core costs no attempt.
- Each attempt writes its own outputs (services/common/keys.py).
- Nothing about a job kills the trainer: bus calls are retried, anything
  unexpected returns the job to the queue, and messages are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg

from services.common import bus
from services.common.config import LANES
from services.common.jobs import TERMINAL_STATES, kind_name, params_dict, state_name
from services.common.keys import dataset_key, model_key, predictions_key
from services.common.logs import job_context
from services.common.records import get_record
from services.common.retry import TRANSIENT, retrying
from services.common.tracing import current_traceparent, process_span
from services.internal.v1 import bus_pb2, records_pb2

from . import attempt as endings
from . import claims
from .attempt import Attempt, Ending, settle
from .context import TrainerContext
from .cores import take_cores
from .pickup import JobNotices, next_job
from .running import Watch, run_attempt
from .worker import Task

log = logging.getLogger(__name__)

# A job message whose record is not visible yet (the scheduler writes the
# record, then publishes) is given this long before it is dropped as a
# message without a job.
RECORD_WAIT_SECONDS = 5.0
# A job whose handling raised something unexpected (a bug) comes back after
# this long, so a job that trips the bug every time does not spin.
UNEXPECTED_ERROR_DELAY_SECONDS = 1.0


def task_for(
    job: records_pb2.JobRecord, attempt: int, threads: int, max_classes: int, traceparent: str = ""
) -> Task:
    """The worker's task for `attempt` of the job: where its inputs are and
    where this attempt writes its outputs."""
    tenant = job.tenant
    kind = kind_name(job.kind)
    if kind == "fit":
        return Task(
            job.id,
            kind,
            dataset_key(tenant, job.dataset_id),
            model_key(tenant, job.id, attempt),
            params=params_dict(job.params),
            threads=threads,
            max_classes=max_classes,
            traceparent=traceparent,
        )
    return Task(
        job.id,
        kind,
        dataset_key(tenant, job.dataset_id),
        model_key(tenant, job.model_source_id or job.model_id, job.model_attempt),
        predictions_key(tenant, job.id, attempt),
        threads=threads,
        traceparent=traceparent,
        model_id=job.model_id,
        model_sha256=job.model_sha256,
        probabilities=job.probabilities,
    )


class Trainer:
    def __init__(self, ctx: TrainerContext):
        self.nc = ctx.nc
        self.js = ctx.js
        self.jobs = ctx.jobs
        self.worker = ctx.worker
        self.cores = ctx.cores
        self.config = ctx.config
        self.trainer_id = ctx.trainer_id
        self.max_threads = ctx.threads
        # The lanes it serves, in the order it takes from them (small first).
        self.lanes = [
            lane for lane in LANES if lane in ctx.config.trainer_lanes.split(",")
        ] or list(LANES)
        self._current: tuple[str, str] | None = None
        self._running = False  # its worker has a job (a small one may run without a core lease)
        self._cancel = asyncio.Event()

    @property
    def current_job(self) -> tuple[str, str] | None:
        """(tenant, job_id) of the job this trainer holds, if any."""
        return self._current

    @property
    def running(self) -> bool:
        """Whether a job runs now (not merely held, waiting for a core)."""
        return self._running

    async def _on_cancel(self, msg: Msg) -> None:
        _, _, tenant, job_id = msg.subject.split(".", 3)
        if self._current == (tenant, job_id):
            log.info("cancel requested for running job %s", job_id)
            self._cancel.set()

    async def run(self, stop: asyncio.Event) -> None:
        cancels = await self.nc.subscribe(bus.CANCEL_WILDCARD, cb=self._on_cancel)
        await self.worker.start()
        notices = JobNotices(self.lanes)
        await notices.listen(self.nc)  # before the first look: no publish goes unnoticed
        pulls = {lane: await self._subscribe(lane) for lane in self.lanes}
        log.info("trainer %s waiting for jobs (lanes: %s)", self.trainer_id, ", ".join(self.lanes))
        try:
            while not stop.is_set():
                try:
                    msgs = await next_job(pulls, notices)
                except TRANSIENT as exc:  # NATS is restarting: wait for it
                    log.warning("fetching jobs failed (%s); retrying", exc)
                    await asyncio.sleep(1.0)
                    continue
                await self._run_batch(msgs, stop)
        finally:
            log.info("trainer %s stopping", self.trainer_id)
            await notices.close()
            for subscription in (*pulls.values(), cancels):
                with contextlib.suppress(Exception):  # the connection may be gone
                    await subscription.unsubscribe()

    async def _run_batch(self, msgs: list[Msg], stop: asyncio.Event) -> None:
        """Run a fetch's jobs one after another. Those waiting their turn are
        heartbeated, so a slow job ahead of them does not get them
        redelivered; at a stop, those not begun go back to the queue.

        A job with another behind it is reported and acked while the next
        one runs (Attempt.end, in a task): the worker does not wait for
        those round trips between the jobs of a burst. The batch returns
        only once every end is settled."""
        waiting = list(msgs)
        keep_alive = asyncio.create_task(self._heartbeat(waiting)) if len(msgs) > 1 else None
        ends: set[asyncio.Task] = set()
        try:
            while waiting:
                msg = waiting.pop(0)
                if stop.is_set():
                    await settle(msg.nak)  # not begun: costs no attempt
                else:
                    await self.handle(msg, stop, ends if waiting else None)
        finally:
            if keep_alive is not None:
                keep_alive.cancel()
            if ends:
                await asyncio.gather(*ends)

    async def _heartbeat(self, waiting: list[Msg]) -> None:
        while waiting:
            await asyncio.sleep(self.config.heartbeat_seconds)
            for msg in list(waiting):
                await settle(msg.in_progress)

    async def _subscribe(self, lane: str):
        consumer = bus.LANE_CONSUMERS[lane]
        return await retrying(
            lambda: self.js.pull_subscribe_bind(consumer, stream=bus.JOBS_STREAM),
            f"subscribing to the {lane} lane",
        )

    async def handle(
        self, msg: Msg, stop: asyncio.Event, ends: set[asyncio.Task] | None = None
    ) -> None:
        """Run one job message to its end. Never raises: whatever goes wrong
        returns the job to the queue for another try. With `ends`, the
        attempt's end (report, then settle) is left running in a task added
        there, once the worker is done with the job."""
        # Its log lines carry the job id (the subject's last token: known
        # even when the message cannot be read).
        with (
            job_context(msg.subject.rsplit(".", 1)[-1]),
            # In the job's trace: a child of the span that published it.
            process_span(
                msg.subject,
                msg.headers,
                bus.TRAINERS_CONSUMER,
                message_id=(msg.headers or {}).get(bus.HDR_MSG_ID, ""),
                **{"fityard.trainer.id": self.trainer_id},
            ),
        ):
            try:
                task = bus_pb2.JobTask.FromString(msg.data)
            except DecodeError:
                log.error("dropping a message that is not a JobTask on %s", msg.subject)
                await settle(msg.term)
                return
            try:
                attempt = Attempt(msg, task, self.js, self.trainer_id)
                self._current = (attempt.job.tenant, attempt.job.id)
                self._cancel.clear()
                ending = await self._attempt(attempt, stop)
                if ends is None:
                    await attempt.end(ending)
                else:
                    ended = asyncio.create_task(_end(attempt, ending, msg.subject))
                    ends.add(ended)
                    ended.add_done_callback(ends.discard)
            except Exception:  # a job must never kill its trainer
                log.exception("could not handle %s; returning it to the queue", msg.subject)
                self.worker.kill()
                await settle(msg.nak, delay=UNEXPECTED_ERROR_DELAY_SECONDS)
            finally:
                self.cores.release_all()
                self._current = None
                self._running = False

    async def _attempt(self, attempt: Attempt, stop: asyncio.Event) -> Ending:
        """Take cores, start (or claim), run: how the attempt ended."""
        job = attempt.job
        # A first delivery carries the record as the scheduler wrote it just
        # before publishing: it starts without waiting for a read. A cancel
        # that came before _current was set is in the record, read while it
        # starts (the worker is given the job once it is known). A
        # redelivery reads the record first: the job may have ended.
        verify = asyncio.create_task(self._cancel_if_ended(job)) if attempt.first_delivery else None
        try:
            if verify is None and (ending := await self._ended(job)) is not None:
                return ending
            threads = await self._take_cores(attempt, stop)
            if self._cancel.is_set():
                log.info("job %s was cancelled before it started", job.id)
                return endings.ended_elsewhere()
            if not threads:
                return endings.not_started()  # shutting down before it started
            if (ending := await self._start(attempt, threads, stop)) is not None:
                return ending
            if verify is not None:
                await verify
            if self._cancel.is_set():  # before the worker has it
                return endings.cancelled()
            self._running = True
            return await self._run(attempt, threads, stop)
        finally:
            if verify is not None:
                verify.cancel()

    async def _take_cores(self, attempt: Attempt, stop: asyncio.Event) -> int:
        return await take_cores(
            self.cores,
            attempt.job.lane,
            waiting=attempt.msg.metadata.num_pending,
            max_threads=self.max_threads,
            heartbeat=attempt.heartbeat,
            every=self.config.heartbeat_seconds,
            give_up=lambda: self._cancel.is_set() or stop.is_set(),
        )

    async def _start(self, attempt: Attempt, threads: int, stop: asyncio.Event) -> Ending | None:
        """Report the start. A first delivery runs as its task's first
        attempt; a redelivery claims its number and waits for the
        scheduler's answer. None to go on, else how it ended."""
        kind = kind_name(attempt.job.kind)
        message = f"{kind} started on {threads} core(s)"
        if attempt.first_delivery:
            attempt.number = attempt.task.first_attempt
        await attempt.report_started(threads, message)
        if not attempt.number:
            answer = await claims.verdict(
                self.jobs,
                attempt.job,
                attempt.delivery,
                attempt.heartbeat,
                self.config.heartbeat_seconds,
                stop,
            )
            if not answer.number:
                return _unanswered[answer.why]()
            attempt.number = answer.number
        log.info(
            "running %s job %s (attempt %d, %d threads)",
            kind,
            attempt.job.id,
            attempt.number,
            threads,
        )
        return None

    async def _run(self, attempt: Attempt, threads: int, stop: asyncio.Event) -> Ending:
        task = task_for(
            attempt.job, attempt.number, threads, self.config.max_classes, current_traceparent()
        )
        watch = Watch(self._cancel, stop, self.config.heartbeat_seconds, self.trainer_id)
        ending = await run_attempt(attempt, self.worker, task, self.jobs, watch)
        seconds = time.monotonic() - attempt.started
        log.info("job %s %s in %.2fs", attempt.job.id, ending.kind or "stopped", seconds)
        return ending

    async def _ended(self, job: records_pb2.JobRecord) -> Ending | None:
        """For a redelivery: an Ending if the record says the job is over or
        there is no such job (waiting RECORD_WAIT_SECONDS for one not
        visible yet); None to go on."""
        give_up = time.monotonic() + RECORD_WAIT_SECONDS
        while (found := await self._read(job)) is None:
            if time.monotonic() >= give_up:
                log.warning("dropping job message %s: no such job", job.id)
                return endings.ended_elsewhere()
            await asyncio.sleep(0.05)
        if found.state in TERMINAL_STATES:
            log.info("skipping job %s: it has already ended (%s)", job.id, state_name(found.state))
            return endings.ended_elsewhere()
        return None

    async def _read(self, job: records_pb2.JobRecord) -> records_pb2.JobRecord | None:
        found = await retrying(
            lambda: get_record(self.jobs, job.tenant, job.id, records_pb2.JobRecord),
            f"reading the record of {job.id}",
        )
        return found[0] if found is not None else None

    async def _cancel_if_ended(self, job: records_pb2.JobRecord) -> None:
        """Stop the job if its record says it has ended (cancelled before
        this trainer was listening for its cancel) or is gone."""
        try:
            found = await get_record(self.jobs, job.tenant, job.id, records_pb2.JobRecord)
        except TRANSIENT:
            return  # the heartbeat's check (running.record_says) reads it again
        if (found is None or found[0].state in TERMINAL_STATES) and self._current == (
            job.tenant,
            job.id,
        ):
            log.info("job %s ended before it started here: stopping it", job.id)
            self._cancel.set()


async def _end(attempt: Attempt, ending: Ending, subject: str) -> None:
    """Attempt.end in a task of its own (Trainer._run_batch). Never raises:
    an end that cannot be reported returns the job to the queue, as in
    Trainer.handle (its worker is not at fault: it is left running)."""
    try:
        await attempt.end(ending)
    except Exception:  # a job must never kill its trainer
        log.exception("could not end %s; returning it to the queue", subject)
        await settle(attempt.msg.nak, delay=UNEXPECTED_ERROR_DELAY_SECONDS)


# A claim the scheduler did not accept, by why (claims.Verdict).
_unanswered = {
    "ended": endings.ended_elsewhere,
    "superseded": endings.superseded,
    "stopping": endings.not_started,
}
