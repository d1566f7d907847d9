"""JobService: job commands go to the scheduler; status, watch and downloads
are served from the job records and the store."""

from __future__ import annotations

import asyncio
import logging
import uuid

from opentelemetry import trace

from fityard.v1 import jobs_pb2, jobs_pb2_grpc
from services.common import errors
from services.common.bus import record_key
from services.common.jobs import (
    OUTPUTS,
    TERMINAL_STATES,
    kind_name,
    output_attempt,
    output_owner,
    state_name,
)
from services.common.keys import OUTPUT_KEYS
from services.common.logs import for_job, job_context
from services.common.records import decode
from services.common.resources import DATASETS, JOBS
from services.common.rpc_tracing import traced_transfer
from services.internal.v1 import records_pb2, scheduler_pb2

from .context import SCHEDULER_DEADLINE_SECONDS, GatewayContext, tenant_of
from .job_updates import TRUST_SECONDS
from .listing import read_page
from .resources import public_job

log = logging.getLogger(__name__)


# What ListJobs can filter on, as the user writes it.
JOB_FILTERS = {
    "state": lambda job: state_name(job.state),
    "kind": lambda job: kind_name(job.kind),
    "dataset_id": lambda job: job.dataset_id,
    "model_id": lambda job: job.model_id,
}

# Each output's file name suffix and content type.
_OUTPUT_FILES = {
    jobs_pb2.JOB_OUTPUT_MODEL: ("model.joblib", "application/octet-stream"),
    jobs_pb2.JOB_OUTPUT_PREDICTIONS: ("predictions.parquet", "application/vnd.apache.parquet"),
}


class JobService(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, ctx: GatewayContext):
        self.gw = ctx

    async def _submit(self, context, request, kind: int, **fields) -> jobs_pb2.Job:
        """Forward a submit to the scheduler. Always with an idempotency key
        (the client's, else a fresh one), so that the call can wait out a
        scheduler restart (wait_for_ready) and be retried without queueing
        the job twice."""
        if request.timeout_seconds < 0:
            raise errors.invalid_argument(
                "timeout_seconds", "must be 0 (derived from the data size) or positive"
            )
        response = await self.gw.scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                tenant=tenant_of(context),
                kind=kind,
                dataset_id=request.dataset_id,
                request_id=request.request_id or uuid.uuid4().hex,
                timeout_seconds=request.timeout_seconds,
                priority=request.priority,
                **fields,
            ),
            timeout=SCHEDULER_DEADLINE_SECONDS,
            wait_for_ready=True,
        )
        with job_context(response.job.id):
            log.info("submitted %s job %s", kind_name(kind), response.job.id)
        return public_job(response.job)

    @errors.handle_errors
    async def SubmitFit(self, request, context):
        errors.check_id("dataset_id", request.dataset_id, DATASETS)
        job = await self._submit(
            context,
            request,
            jobs_pb2.JOB_KIND_FIT,
            params=request.params,
            no_cache=request.no_cache,
        )
        return jobs_pb2.SubmitFitResponse(job=job)

    @errors.handle_errors
    async def SubmitPredict(self, request, context):
        errors.check_id("model_id", request.model_id, JOBS)
        errors.check_id("dataset_id", request.dataset_id, DATASETS)
        job = await self._submit(
            context,
            request,
            jobs_pb2.JOB_KIND_PREDICT,
            model_id=request.model_id,
            probabilities=request.probabilities,
        )
        return jobs_pb2.SubmitPredictResponse(job=job)

    @for_job()
    @errors.handle_errors
    async def GetJob(self, request, context):
        record = await self.gw.job_record(tenant_of(context), request.job_id)
        return jobs_pb2.GetJobResponse(job=public_job(record))

    @for_job()
    @errors.handle_errors
    async def WatchJob(self, request, context):
        tenant = tenant_of(context)
        errors.check_id("job_id", request.job_id, JOBS)
        # Listening before the read: no change falls between the two.
        key = record_key(tenant, request.job_id)
        with self.gw.job_updates.listen(key) as changes:
            record, revision = await self.gw.job_version(tenant, request.job_id)  # NOT_FOUND
            while True:
                job = public_job(record)
                yield jobs_pb2.WatchJobResponse(job=job)
                if job.state in TERMINAL_STATES:
                    return
                while True:
                    try:
                        changed, value = await asyncio.wait_for(changes.get(), TRUST_SECONDS)
                    except asyncio.TimeoutError:  # nothing heard: read it (job_updates.py)
                        found = await self.gw.job_updates.read(key)
                        changed, value = found if found is not None else (revision + 1, None)
                    if value is None:
                        return  # deleted (only an ended job can be: not reached)
                    if changed > revision:
                        break
                record, revision = decode(value, records_pb2.JobRecord), changed

    @errors.handle_errors
    async def ListJobs(self, request, context):
        items, token = await read_page(
            self.gw.jobs,
            tenant_of(context),
            records_pb2.JobRecord,
            request.page_size,
            request.page_token,
            request.filter,
            JOB_FILTERS,
        )
        return jobs_pb2.ListJobsResponse(jobs=[public_job(r) for r in items], next_page_token=token)

    @for_job()
    @errors.handle_errors
    async def CancelJob(self, request, context):
        errors.check_id("job_id", request.job_id, JOBS)
        response = await self.gw.scheduler.CancelJob(
            scheduler_pb2.CancelJobRequest(tenant=tenant_of(context), job_id=request.job_id),
            timeout=SCHEDULER_DEADLINE_SECONDS,
            wait_for_ready=True,  # cancelling twice is harmless: the second says "already ended"
        )
        # The caller's next GetJob shows the cancel, whatever the stream has delivered.
        await self.gw.job_updates.refresh(record_key(tenant_of(context), request.job_id))
        return jobs_pb2.CancelJobResponse(job=public_job(response.job))

    @for_job()
    @errors.handle_errors
    async def DeleteJob(self, request, context):
        errors.check_id("job_id", request.job_id, JOBS)
        await self.gw.scheduler.DeleteJob(
            scheduler_pb2.DeleteJobRequest(tenant=tenant_of(context), job_id=request.job_id),
            timeout=SCHEDULER_DEADLINE_SECONDS,
            wait_for_ready=True,  # deleting twice: the second says NOT_FOUND
        )
        await self.gw.job_updates.refresh(record_key(tenant_of(context), request.job_id))
        return jobs_pb2.DeleteJobResponse()

    @for_job()
    @errors.handle_errors
    @traced_transfer("/fityard.v1.JobService/DownloadJobOutput")
    async def DownloadJobOutput(self, request, context):
        tenant = tenant_of(context)
        job = await self.gw.job_record(tenant, request.job_id)
        if job.state != jobs_pb2.JOB_STATE_SUCCEEDED:
            # The caller may know of its end through another gateway: read
            # the record itself before refusing.
            await self.gw.job_updates.refresh(record_key(tenant, request.job_id))
            job = await self.gw.job_record(tenant, request.job_id)
        trace.get_current_span().set_attribute("fityard.job.id", job.id)
        output = request.output or OUTPUTS[job.kind][0]
        if job.state != jobs_pb2.JOB_STATE_SUCCEEDED:
            hint = (
                f"it failed: {job.error}"
                if job.state == jobs_pb2.JOB_STATE_FAILED
                else "wait until it SUCCEEDED"
            )
            raise errors.failed_precondition(
                JOBS.name(job.id),
                "JOB_NOT_SUCCEEDED",
                f"{JOBS.name(job.id)} is {state_name(job.state)}; {hint}",
            )
        if output not in job.outputs:
            produces = ", ".join(jobs_pb2.JobOutput.Name(o) for o in job.outputs) or "nothing"
            raise errors.invalid_argument(
                "output",
                f"{JOBS.name(job.id)} produced {produces}, not {jobs_pb2.JobOutput.Name(output)}",
            )
        suffix, content_type = _OUTPUT_FILES[output]
        await self.gw.transfers.send(
            context,
            OUTPUT_KEYS[output](tenant, output_owner(job), output_attempt(job)),
            f"the {suffix} of {JOBS.name(job.id)}",
            lambda info: jobs_pb2.DownloadJobOutputResponse(
                info=jobs_pb2.OutputInfo(
                    output=output,
                    size_bytes=info.size,
                    filename=f"{job.id}.{suffix}",
                    content_type=content_type,
                )
            ),
            lambda chunk: jobs_pb2.DownloadJobOutputResponse(chunk=chunk),
        )
