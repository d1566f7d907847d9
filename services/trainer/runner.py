"""The trainer's job loop: pull a job from JetStream, run it in the worker
process, report to the scheduler, ack.

Guarantees, and how they are kept:
- A job is acked only after its outputs are stored and its final event is
  accepted by JetStream; if the trainer dies before, the job comes back.
- While a job runs, the trainer sends in-progress heartbeats, so a fit of
  hours is never redelivered; if the trainer dies, they stop and JetStream
  hands the job to another trainer after the ack deadline.
- Attempts are counted in the job record, not by JetStream's deliveries:
  a trainer starting a job whose record still says RUNNING knows the last
  attempt died with its trainer; a worker that dies is counted by its
  trainer. After FITYARD_MAX_ATTEMPTS such losses the job FAILS saying so.
  Handing a job back (shutdown) or waiting for a core costs no attempt.
- Each attempt writes its own outputs (services/common/keys.py). At every
  heartbeat the trainer reads the record: a job cancelled meanwhile is
  stopped even if the cancel notice was missed, and an attempt the record
  no longer counts (a newer one started elsewhere) stops without a word.
- Nothing about a job kills the trainer: bus calls are retried, anything
  unexpected returns the job to the queue, and messages are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.msg import Msg

from fityard.v1 import jobs_pb2
from ml.messages import bounded
from services.common import bus
from services.common.config import LANES, SMALL_LANE
from services.common.jobs import (
    FAILED_PROCESS_DIED,
    FAILED_TIMEOUT,
    OUTPUTS,
    TERMINAL_STATES,
    kind_name,
    params_dict,
    state_name,
)
from services.common.keys import dataset_key, model_key, predictions_key
from services.common.logs import job_context
from services.common.records import get_record, now
from services.common.retry import TRANSIENT, retrying
from services.common.tracing import (
    current_traceparent,
    process_span,
    send_span,
    with_trace_headers,
)
from services.internal.v1 import bus_pb2, records_pb2

from .context import TrainerContext
from .progress import ProgressThrottle
from .worker import Outcome, Task

log = logging.getLogger(__name__)

# A job message whose record is not visible yet (the scheduler writes the
# record, then publishes) is given this long before it is dropped as a
# message without a job.
RECORD_WAIT_SECONDS = 5.0
# A job handed back on shutdown is redelivered after this delay, so the
# scheduler has folded the hand-back before another trainer reads the record
# (which would otherwise still say RUNNING: a lost attempt).
HAND_BACK_DELAY_SECONDS = 1.0
# After a worker died, the job comes back after this delay.
RETRY_DELAY_SECONDS = 1.0
# How long an event publish is retried before the job is handed back.
REPORT_WITHIN_SECONDS = 120.0
# The longest a small job waits for a core that small jobs hold.
SMALL_JOB_CORE_WAIT_SECONDS = 5.0
# At most one progress report per job this often (progress.py says why).
PROGRESS_EVERY_SECONDS = 0.5


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
        subs = []
        for lane in self.lanes:
            consumer = bus.LANE_CONSUMERS[lane]
            subs.append(
                await retrying(
                    lambda consumer=consumer: self.js.pull_subscribe_bind(
                        consumer, stream=bus.JOBS_STREAM
                    ),
                    f"subscribing to the {lane} lane",
                )
            )
        log.info("trainer %s waiting for jobs (lanes: %s)", self.trainer_id, ", ".join(self.lanes))
        try:
            while not stop.is_set():
                try:
                    msgs = await _next_job(subs)
                except TRANSIENT as exc:  # NATS is restarting: wait for it
                    log.warning("fetching jobs failed (%s); retrying", exc)
                    await asyncio.sleep(1.0)
                    continue
                for msg in msgs:
                    await self.handle(msg, stop)
        finally:
            log.info("trainer %s stopping", self.trainer_id)
            for subscription in (*subs, cancels):
                with contextlib.suppress(Exception):  # the connection may be gone
                    await subscription.unsubscribe()

    async def handle(self, msg: Msg, stop: asyncio.Event) -> None:
        """Run one job message to its end. Never raises: whatever goes wrong
        returns the job to the queue for another try."""
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
                await self._handle(msg, stop)
            except Exception:  # a job must never kill its trainer
                log.exception("could not handle %s; returning it to the queue", msg.subject)
                self.worker.kill()
                await _settle(msg.nak, delay=RETRY_DELAY_SECONDS)
            finally:
                self.cores.release_all()
                self._current = None

    async def _handle(self, msg: Msg, stop: asyncio.Event) -> None:
        task = bus_pb2.JobTask.FromString(msg.data)
        job = task.job
        self._current = (job.tenant, job.id)
        self._cancel.clear()
        if first_delivery(msg, job):
            # The task carries the record as the scheduler wrote it just
            # before publishing, and no trainer has had the message: the job
            # starts without waiting for a read. A cancel that came before
            # _current was set is in the record, read while the start is
            # reported (the worker is given the job once it is known).
            verify = asyncio.create_task(self._cancel_if_ended(job))
            try:
                await self._start(msg, task, job, stop, verify)
            finally:
                verify.cancel()
            return
        # Read after _current is set, so a cancel arriving from here on is
        # seen by _on_cancel, and one that came before is in the record.
        record = await self._record(job, wait=RECORD_WAIT_SECONDS)
        await self._start(msg, task, record, stop)

    async def _cancel_if_ended(self, job: records_pb2.JobRecord) -> None:
        """Stop the job if its record says it has ended (cancelled before
        this trainer was listening for its cancel) or is gone."""
        try:
            found = await get_record(self.jobs, job.tenant, job.id, records_pb2.JobRecord)
        except TRANSIENT:
            return  # the heartbeat's check (_still_ours) reads it again
        if (found is None or found[0].state in TERMINAL_STATES) and self._current == (
            job.tenant,
            job.id,
        ):
            log.info("job %s ended before it started here: stopping it", job.id)
            self._cancel.set()

    async def _start(
        self,
        msg: Msg,
        task: bus_pb2.JobTask,
        record: records_pb2.JobRecord | None,
        stop: asyncio.Event,
        verify: asyncio.Task | None = None,
    ) -> None:
        job = task.job
        if record is None:
            log.warning("dropping job message %s: no such job", job.id)
            await _settle(msg.ack)
            return
        if record.state in TERMINAL_STATES:
            log.info(
                "skipping job %s: it has already ended (%s)",
                job.id,
                state_name(record.state),
            )
            await _settle(msg.ack)
            return
        # A record still RUNNING means the last attempt never ended: its
        # trainer died (or lost its heartbeats) with the job.
        lost = record.lost_attempts + (record.state == jobs_pb2.JOB_STATE_RUNNING)
        attempt = record.attempts + 1
        if lost >= self.config.max_attempts:
            await self._give_up(msg, job, record.attempts, lost, "its trainer died each time")
            return
        self.cores.lane = job.lane
        if job.lane == SMALL_LANE:
            # A small job takes a free core; with none free it waits while
            # only small jobs hold them (one ends within moments), at most
            # SMALL_JOB_CORE_WAIT_SECONDS, and otherwise runs single-threaded
            # beside the jobs holding them (seconds of oversubscription,
            # rather than waiting hours behind a long fit that holds them).
            got_core = True
            if not self.cores.try_take_free(1) and self.cores.all_held_for(SMALL_LANE):
                give_up_at = time.monotonic() + SMALL_JOB_CORE_WAIT_SECONDS
                await self.cores.take_one(
                    msg.in_progress,
                    self.config.heartbeat_seconds,
                    give_up=lambda: (
                        self._cancel.is_set()
                        or stop.is_set()
                        or time.monotonic() >= give_up_at
                        or not self.cores.all_held_for(SMALL_LANE)
                    ),
                )
        else:
            # The job stays QUEUED until a core is free for it.
            got_core = await self.cores.take_one(
                msg.in_progress,
                self.config.heartbeat_seconds,
                give_up=lambda: self._cancel.is_set() or stop.is_set(),
            )
        if self._cancel.is_set():
            log.info("job %s was cancelled while waiting for a core", job.id)
            await _settle(msg.ack)
            return
        if not got_core:
            await _settle(msg.nak)  # shutting down before it started: nothing to count
            return
        threads = (
            1 if job.lane == SMALL_LANE else 1 + self._take_extra_cores(msg.metadata.num_pending)
        )
        self._running = True
        try:
            await self._execute(
                msg, task, record.timeout_seconds, attempt, lost, stop, threads, verify
            )
        finally:
            self._running = False

    async def _record(
        self, job: records_pb2.JobRecord, wait: float = 0.0
    ) -> records_pb2.JobRecord | None:
        """The job's record (retrying NATS blips), waiting up to `wait`
        seconds for one that is not visible yet."""
        give_up = time.monotonic() + wait
        while True:
            found = await retrying(
                lambda: get_record(self.jobs, job.tenant, job.id, records_pb2.JobRecord),
                f"reading the record of {job.id}",
            )
            if found is not None:
                return found[0]
            if time.monotonic() >= give_up:
                return None
            await asyncio.sleep(0.05)

    def _take_extra_cores(self, waiting: int) -> int:
        """More cores for this job if they are free and no other job waits
        (`waiting`: jobs behind this one when it was delivered, from the
        message's own metadata, so no extra request): a lone job gets the
        machine, queued jobs run side by side."""
        if waiting > 0:
            return 0
        return self.cores.try_take_free(self.max_threads - 1)

    async def _report(
        self, job: records_pb2.JobRecord, state: int, attempt: int, lost: int, **fields
    ) -> None:
        """Publish a TrainerEvent, retrying NATS blips; JetStream's ack means
        the scheduler will see it, even if it is down right now."""
        for name in ("error", "progress_message"):
            if name in fields:
                fields[name] = bounded(fields[name])
        event = bus_pb2.TrainerEvent(
            job_id=job.id,
            tenant=job.tenant,
            state=state,
            trainer_id=self.trainer_id,
            attempt=attempt,
            lost_attempts=lost,
            time=now(),
            **fields,
        )
        data = event.SerializeToString()
        subject = bus.event_subject(job.tenant, job.id)
        headers = {bus.HDR_TENANT: job.tenant, bus.HDR_JOB_ID: job.id}
        # A state change (a start is RUNNING at progress 0) is traced, in the
        # job's trace; a progress update is not.
        change = state != jobs_pb2.JOB_STATE_RUNNING or not fields.get("progress")
        with send_span(subject) if change else contextlib.nullcontext():
            if change:
                with_trace_headers(headers)
            await retrying(
                lambda: self.js.publish(subject, data, headers=headers),
                f"reporting {state_name(state)} for {job.id}",
                within=REPORT_WITHIN_SECONDS,
            )

    async def _give_up(
        self, msg: Msg, job: records_pb2.JobRecord, attempt: int, lost: int, how: str
    ) -> None:
        error = (
            f"the job was stopped {lost} time(s) by the death of the process running it ({how}), "
            f"the most this server retries (FITYARD_MAX_ATTEMPTS={self.config.max_attempts}); most likely it "
            "needs more memory than a trainer has: try a smaller dataset, a smaller max_iter or max_leaf_nodes"
        )
        log.warning("job %s failed: %s", job.id, error)
        await self._report(
            job,
            jobs_pb2.JOB_STATE_FAILED,
            max(attempt, 1),
            lost,
            error=error,
            failure_reason=FAILED_PROCESS_DIED,
            progress_message="failed",
        )
        await _settle(msg.ack)

    async def _execute(
        self,
        msg: Msg,
        task: bus_pb2.JobTask,
        timeout: float,
        attempt: int,
        lost: int,
        stop: asyncio.Event,
        threads: int,
        verify: asyncio.Task | None = None,
    ) -> None:
        job = task.job
        kind = kind_name(job.kind)
        log.info("running %s job %s (attempt %d, %d threads)", kind, job.id, attempt, threads)
        started = time.monotonic()
        await self._report(
            job,
            jobs_pb2.JOB_STATE_RUNNING,
            attempt,
            lost,
            progress=0.0,
            progress_message=f"{kind} started on {threads} core(s)",
            cores=threads,
        )
        if verify is not None:
            await verify
        if self._cancel.is_set():  # before the worker has it
            await self._cancelled(msg, job, attempt, lost)
            return

        async def report_progress(fraction: float, message: str) -> None:
            await self._report(
                job,
                jobs_pb2.JOB_STATE_RUNNING,
                attempt,
                lost,
                progress=fraction,
                progress_message=message,
            )

        progress = ProgressThrottle(report_progress, PROGRESS_EVERY_SECONDS)
        work = asyncio.create_task(
            self.worker.run(
                task_for(job, attempt, threads, self.config.max_classes, current_traceparent()),
                progress.offer,
            )
        )
        cancelled = asyncio.create_task(self._cancel.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {work, cancelled, stopping},
                    timeout=self.config.heartbeat_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if work in done:
                    break
                if cancelled in done:
                    progress.close()  # no RUNNING report after this attempt ends
                    await self._stop_work(work)
                    await self._cancelled(msg, job, attempt, lost)
                    return
                if stopping in done:
                    # Shutting down (scale-in, restart): another trainer takes
                    # the job; this attempt ended cleanly and loses nothing.
                    progress.close()  # no RUNNING report after this attempt ends
                    await self._stop_work(work)
                    log.info("shutting down: returning job %s to the queue", job.id)
                    await self._report(
                        job,
                        jobs_pb2.JOB_STATE_QUEUED,
                        attempt,
                        lost,
                        progress_message=f"returned to the queue: trainer {self.trainer_id} is shutting down",
                    )
                    await _settle(msg.nak, delay=HAND_BACK_DELAY_SECONDS)
                    return
                if timeout and time.monotonic() - started > timeout:
                    progress.close()  # no RUNNING report after this attempt ends
                    await self._stop_work(work)
                    error = (
                        f"timed out after {timeout:.0f} s (the job's limit); submit it again with a larger "
                        "timeout_seconds, or with less data or fewer iterations (max_iter)"
                    )
                    await self._report(
                        job,
                        jobs_pb2.JOB_STATE_FAILED,
                        attempt,
                        lost,
                        error=error,
                        failure_reason=FAILED_TIMEOUT,
                        progress_message="failed",
                    )
                    await _settle(msg.ack)
                    return
                await _settle(msg.in_progress)  # heartbeat: still working on it
                if not await self._still_ours(job, attempt):
                    progress.close()  # no RUNNING report after this attempt ends
                    await self._stop_work(work)
                    return
        finally:
            progress.close()
            cancelled.cancel()
            stopping.cancel()
        await self._finish(msg, job, work.result(), attempt, lost, started)

    async def _cancelled(
        self, msg: Msg, job: records_pb2.JobRecord, attempt: int, lost: int
    ) -> None:
        await self._report(
            job,
            jobs_pb2.JOB_STATE_CANCELLED,
            attempt,
            lost,
            progress_message="cancelled by the user",
        )
        await _settle(msg.ack)

    async def _still_ours(self, job: records_pb2.JobRecord, attempt: int) -> bool:
        """Whether the record still wants this attempt to run: not if the job
        was cancelled (even when the cancel notice was missed), nor if a newer
        attempt started elsewhere. A NATS blip is not a reason to stop."""
        try:
            found = await get_record(self.jobs, job.tenant, job.id, records_pb2.JobRecord)
        except TRANSIENT:
            return True
        if found is None:
            return True
        record = found[0]
        if record.state in TERMINAL_STATES:
            log.info("job %s has ended (%s): stopping it", job.id, state_name(record.state))
            return False
        if record.attempts > attempt:
            log.warning(
                "job %s: attempt %d no longer counts (record: attempt %d); stopping it",
                job.id,
                attempt,
                record.attempts,
            )
            return False
        return True

    async def _stop_work(self, work: asyncio.Task) -> None:
        await self.worker.stop()
        await asyncio.gather(work, return_exceptions=True)

    async def _finish(
        self,
        msg: Msg,
        job: records_pb2.JobRecord,
        outcome: Outcome,
        attempt: int,
        lost: int,
        started: float,
    ) -> None:
        elapsed = time.monotonic() - started
        if outcome.ok:
            await self._report(
                job,
                jobs_pb2.JOB_STATE_SUCCEEDED,
                attempt,
                lost,
                rows=outcome.rows,
                features=outcome.features,
                model_sha256=outcome.model_sha256,
                metrics=jobs_pb2.FitMetrics.FromString(outcome.metrics),
                outputs=OUTPUTS[job.kind],
                progress=1.0,
                progress_message=f"done in {elapsed:.1f}s",
            )
            log.info("job %s succeeded in %.2fs", job.id, elapsed)
        elif outcome.died:
            lost += 1
            if lost >= self.config.max_attempts:
                await self._give_up(msg, job, attempt, lost, outcome.error)
                return
            log.warning("job %s: %s; retrying (lost attempts: %d)", job.id, outcome.error, lost)
            await self._report(
                job,
                jobs_pb2.JOB_STATE_QUEUED,
                attempt,
                lost,
                progress_message=f"attempt {attempt}: {outcome.error}; retrying",
            )
            await _settle(msg.nak, delay=RETRY_DELAY_SECONDS)
            return
        else:
            await self._report(
                job,
                jobs_pb2.JOB_STATE_FAILED,
                attempt,
                lost,
                error=outcome.error,
                failure_reason=outcome.reason,
                progress_message="failed",
            )
            log.info("job %s failed: %s", job.id, outcome.error)
        await _settle(msg.ack)


# An idle trainer looks at each of its lanes (a pull answered at once when a
# job waits), then waits this long on its first lane: a small job is taken
# the moment it arrives, a job of the default lane (seconds of work at
# least) within this long. A stop waits for the fetch under way, so it is
# short: an idle trainer stops within it.
QUICK_LOOK_SECONDS = 0.01
FIRST_LANE_WAIT_SECONDS = 0.25


def first_delivery(msg: Msg, job: records_pb2.JobRecord) -> bool:
    """Whether this is the job's first message, delivered for the first
    time, before any attempt: its record is then the one it carries. (A
    re-published job's message has an id of its own: job_queue.publish.)"""
    return (
        msg.metadata.num_delivered == 1
        and (msg.headers or {}).get(bus.HDR_MSG_ID) == job.id
        and job.state == jobs_pb2.JOB_STATE_QUEUED
        and job.attempts == 0
        and job.lost_attempts == 0
    )


async def _next_job(subs: list) -> list[Msg]:
    """The next job message, from the first of its lanes (in priority
    order) that has one; [] if none came within FIRST_LANE_WAIT_SECONDS."""
    for sub in subs:
        msgs = await _fetch(sub, QUICK_LOOK_SECONDS)
        if msgs:
            return msgs
    return await _fetch(subs[0], FIRST_LANE_WAIT_SECONDS)


async def _fetch(sub, timeout: float) -> list[Msg]:
    try:
        return await sub.fetch(1, timeout=timeout)
    except asyncio.TimeoutError:
        return []


async def _settle(action, **kwargs) -> None:
    """Ack, nak or heartbeat, retrying a NATS blip briefly. If it still
    fails, JetStream redelivers the job after the ack deadline, and the next
    trainer finds the record ended (or counts the attempt): nothing is lost,
    so the failure is logged, not raised."""
    try:
        await retrying(lambda: action(**kwargs), "acknowledging a job message", within=5.0)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not settle a job message: %s", exc)
