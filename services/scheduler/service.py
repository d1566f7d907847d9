"""The scheduler's gRPC service: admit, queue and cancel jobs."""
from __future__ import annotations

import asyncio
import logging

import grpc
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from fityard.internal.v1 import bus_pb2, scheduler_pb2, scheduler_pb2_grpc
from fityard.v1 import jobs_pb2
from services.common import bus, errors
from services.common.config import DEFAULT_LANE, DEFAULT_TENANT
from services.common.jobs import kind_name, state_name
from services.common.records import TERMINAL_STATES, encode, new_id, now

from .admission import admit
from .store import update_job

log = logging.getLogger(__name__)


class SchedulerService(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, nc: NATS, js: JetStreamContext, jobs: KeyValue, datasets: KeyValue):
        self.nc = nc
        self.js = js
        self.jobs = jobs
        self.datasets = datasets

    @errors.handle_errors
    async def SubmitJob(self, request, context):
        tenant = request.tenant or DEFAULT_TENANT
        await admit(request, tenant, self.jobs, self.datasets)
        job = jobs_pb2.Job(
            id=new_id("job"),
            kind=request.kind,
            state=jobs_pb2.JOB_STATE_QUEUED,
            dataset_id=request.dataset_id,
            model_id=request.model_id,
            params=request.params,
            create_time=now(),
            progress_message="waiting for a trainer",
            lane=DEFAULT_LANE,
            tenant=tenant,
        )
        key = bus.record_key(tenant, job.id)
        # Record and publish at once (one round trip, not two): a trainer that
        # gets the job before its record is visible treats it as live.
        recorded, published = await asyncio.gather(
            self.jobs.create(key, encode(job)),
            self.js.publish(
                bus.job_subject(job.lane, kind_name(job.kind)),
                bus_pb2.JobTask(job=job).SerializeToString(),
                headers={bus.HDR_MSG_ID: job.id, bus.HDR_TENANT: tenant, bus.HDR_JOB_ID: job.id},
            ),
            return_exceptions=True,
        )
        if isinstance(recorded, BaseException):
            raise recorded
        if isinstance(published, BaseException):
            exc = published
            log.error("could not queue %s: %s", job.id, exc)
            job.state = jobs_pb2.JOB_STATE_FAILED
            job.error = "the job could not be queued (message bus unavailable); submit it again"
            job.end_time.CopyFrom(now())
            await self.jobs.put(key, encode(job))
            raise errors.ApiError(grpc.StatusCode.UNAVAILABLE, f"could not queue job: {exc}") from exc
        log.info("queued %s job %s for tenant %s", kind_name(job.kind), job.id, tenant)
        return scheduler_pb2.SubmitJobResponse(job=job)

    @errors.handle_errors
    async def CancelJob(self, request, context):
        tenant = request.tenant or DEFAULT_TENANT
        job_id = errors.check_id("job_id", request.job_id, "job_5b0c9e7d1a2f3e4d")
        was: list[int] = []

        def cancel(job: jobs_pb2.Job) -> bool:
            was[:] = [job.state]
            if job.state in TERMINAL_STATES:
                return False
            job.state = jobs_pb2.JOB_STATE_CANCELLED
            job.end_time.CopyFrom(now())
            job.progress_message = "cancelled by the user"
            return True

        job = await update_job(self.jobs, tenant, job_id, cancel)
        if job is None:
            raise errors.not_found("job", job_id)
        if was[0] in TERMINAL_STATES:
            raise errors.failed_precondition(
                f"jobs/{job_id}",
                "JOB_ENDED",
                f"job {job_id!r} has already ended ({state_name(was[0])}); there is nothing to cancel",
            )
        # Tell the trainer that holds the job (running it, or holding it
        # while it waits for a free core) to drop it. A job still in the
        # stream is skipped by whichever trainer pulls it: its record says
        # CANCELLED.
        await self.nc.publish(bus.cancel_subject(tenant, job_id))
        log.info("cancelled job %s (was %s)", job_id, state_name(was[0]))
        return scheduler_pb2.CancelJobResponse(job=job)
