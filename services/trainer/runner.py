"""The trainer's job loop: pull a job from JetStream, run it in the worker
process, report to the scheduler, ack.

Delivery guarantees: a job is acked only after its outputs are stored and its
final event is accepted by JetStream. While it runs, the trainer sends
in-progress heartbeats so a long fit is not redelivered; if the trainer dies,
the heartbeats stop and JetStream hands the job to another trainer.
"""
from __future__ import annotations

import asyncio
import logging
import time

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from fityard.internal.v1 import bus_pb2
from fityard.v1 import jobs_pb2
from services.common import bus
from services.common.jobs import kind_name, params_dict
from services.common.keys import dataset_key, model_key, predictions_key
from services.common.records import TERMINAL_STATES, get_record, now

from .cores import AllCores, CoreLeases
from .worker import Outcome, Task, WorkerProcess

log = logging.getLogger(__name__)

OUTPUTS = {"fit": [jobs_pb2.JOB_OUTPUT_MODEL], "predict": [jobs_pb2.JOB_OUTPUT_PREDICTIONS]}


def task_for(job: jobs_pb2.Job, threads: int) -> Task:
    tenant = job.tenant
    kind = kind_name(job.kind)
    if kind == "fit":
        return Task(
            job.id,
            kind,
            dataset_key(tenant, job.dataset_id),
            model_key(tenant, job.id),
            params=params_dict(job.params),
            threads=threads,
        )
    return Task(
        job.id,
        kind,
        dataset_key(tenant, job.dataset_id),
        model_key(tenant, job.model_id),
        predictions_key(tenant, job.id),
        threads=threads,
    )


class Trainer:
    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        jobs: KeyValue,
        worker: WorkerProcess,
        trainer_id: str,
        heartbeat_seconds: float,
        cores: CoreLeases | AllCores,
        max_threads: int,
    ):
        self.nc = nc
        self.js = js
        self.jobs = jobs
        self.worker = worker
        self.trainer_id = trainer_id
        self.heartbeat_seconds = heartbeat_seconds
        self.cores = cores
        self.max_threads = max_threads
        self._current: tuple[str, str] | None = None
        self._cancel = asyncio.Event()

    async def _on_cancel(self, msg: Msg) -> None:
        _, _, tenant, job_id = msg.subject.split(".", 3)
        if self._current == (tenant, job_id):
            log.info("cancel requested for running job %s", job_id)
            self._cancel.set()

    async def run(self, stop: asyncio.Event) -> None:
        cancels = await self.nc.subscribe(bus.CANCEL_WILDCARD, cb=self._on_cancel)
        await self.worker.start()
        sub = await self.js.pull_subscribe_bind(bus.TRAINERS_CONSUMER, stream=bus.JOBS_STREAM)
        log.info("trainer %s waiting for jobs", self.trainer_id)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(1, timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                for msg in msgs:
                    await self.handle(msg, stop)
        finally:
            log.info("trainer %s stopping", self.trainer_id)
            await sub.unsubscribe()
            await cancels.unsubscribe()

    async def _report(self, job: jobs_pb2.Job, state: int, attempt: int, **fields) -> None:
        event = bus_pb2.TrainerEvent(
            job_id=job.id, tenant=job.tenant, state=state, trainer_id=self.trainer_id, attempt=attempt, time=now(), **fields
        )
        await self.js.publish(
            bus.event_subject(job.tenant, job.id),
            event.SerializeToString(),
            headers={bus.HDR_TENANT: job.tenant, bus.HDR_JOB_ID: job.id},
        )

    async def handle(self, msg: Msg, stop: asyncio.Event) -> None:
        job = bus_pb2.JobTask.FromString(msg.data).job
        attempt = msg.metadata.num_delivered
        self._current = (job.tenant, job.id)
        self._cancel.clear()
        try:
            # Checked after _current is set, so a cancel arriving from here on
            # is seen by _on_cancel, and one that came before is in the record.
            if await self._has_ended(job):
                await msg.ack()
                return
            # The job stays QUEUED until a core is free for it.
            got_core = await self.cores.take_one(
                msg.in_progress, self.heartbeat_seconds, give_up=lambda: self._cancel.is_set() or stop.is_set()
            )
            if self._cancel.is_set():
                log.info("job %s was cancelled while waiting for a core", job.id)
                await msg.ack()
                return
            if not got_core:
                await msg.nak()  # shutting down: another trainer takes it now
                return
            threads = 1 + self._take_extra_cores(msg.metadata.num_pending)
            await self._execute(msg, job, attempt, stop, threads)
        finally:
            self.cores.release_all()
            self._current = None

    async def _has_ended(self, job: jobs_pb2.Job) -> bool:
        # No record yet is normal: the scheduler writes it while publishing.
        found = await get_record(self.jobs, job.tenant, job.id, jobs_pb2.Job)
        if found is not None and found[0].state in TERMINAL_STATES:
            log.info("skipping job %s: it has already ended (cancelled)", job.id)
            return True
        return False

    def _take_extra_cores(self, waiting: int) -> int:
        """More cores for this job if they are free and no other job waits
        (`waiting`: jobs behind this one when it was delivered, from the
        message's own metadata, so no extra request): a lone job gets the
        machine, queued jobs run side by side."""
        if waiting > 0:
            return 0
        return self.cores.try_take_free(self.max_threads - 1)

    async def _execute(self, msg: Msg, job: jobs_pb2.Job, attempt: int, stop: asyncio.Event, threads: int) -> None:
        kind = kind_name(job.kind)
        log.info("running %s job %s (attempt %d, %d threads)", kind, job.id, attempt, threads)
        started = time.monotonic()
        await self._report(
            job,
            jobs_pb2.JOB_STATE_RUNNING,
            attempt,
            progress=0.0,
            progress_message=f"{kind} started on {threads} core(s)",
            cores=threads,
        )

        async def on_progress(fraction: float, message: str) -> None:
            await self._report(job, jobs_pb2.JOB_STATE_RUNNING, attempt, progress=fraction, progress_message=message)

        work = asyncio.create_task(self.worker.run(task_for(job, threads), on_progress))
        cancelled = asyncio.create_task(self._cancel.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {work, cancelled, stopping}, timeout=self.heartbeat_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                if work in done:
                    break
                if cancelled in done or stopping in done:
                    self.worker.kill()
                    await asyncio.gather(work, return_exceptions=True)
                    if cancelled in done:
                        await self._report(job, jobs_pb2.JOB_STATE_CANCELLED, attempt, progress_message="cancelled by the user")
                        await msg.ack()
                    else:
                        # Shutting down (scale-in, restart): hand the job to another trainer now.
                        log.info("shutting down: returning job %s to the queue", job.id)
                        await msg.nak()
                    return
                await msg.in_progress()  # heartbeat: still working on it
        finally:
            cancelled.cancel()
            stopping.cancel()
        outcome: Outcome = work.result()
        elapsed = time.monotonic() - started
        if outcome.ok:
            await self._report(
                job,
                jobs_pb2.JOB_STATE_SUCCEEDED,
                attempt,
                rows=outcome.rows,
                outputs=OUTPUTS[kind],
                progress=1.0,
                progress_message=f"done in {elapsed:.1f}s",
            )
            log.info("job %s succeeded in %.2fs", job.id, elapsed)
        else:
            await self._report(job, jobs_pb2.JOB_STATE_FAILED, attempt, error=outcome.error, progress_message="failed")
            log.info("job %s failed: %s", job.id, outcome.error)
        await msg.ack()
