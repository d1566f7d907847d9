"""The scheduler's gRPC service: admit, queue and cancel jobs."""

from __future__ import annotations

import logging

from nats.js.errors import KeyWrongLastSequenceError

from fityard.v1 import jobs_pb2
from services.common import bus, errors, job_queue
from services.common.config import DEFAULT_TENANT, SCHEMA
from services.common.jobs import TERMINAL_STATES, kind_name, state_name
from services.common.logs import for_job, job_context
from services.common.records import encode, get_record, id_time, new_record_id, now
from services.common.resources import DATASETS, JOBS
from services.common.retry import retrying
from services.common.tracing import current_traceparent
from services.internal.v1 import records_pb2, scheduler_pb2, scheduler_pb2_grpc

from . import metrics
from .admission import Admission, Admitted
from .context import SchedulerContext
from .deletion import Deletion
from .fit_cache import CACHED, FitCache, cache_key, cacheable
from .store import remember, update_job

log = logging.getLogger(__name__)

# How long a submit retries publishing its job before leaving it to
# reconciliation (services/scheduler/reconcile.py).
SUBMIT_PUBLISH_SECONDS = 5.0


def _same_request(job: records_pb2.JobRecord, request: scheduler_pb2.SubmitJobRequest) -> bool:
    return (job.kind, job.dataset_id, job.model_id, job.params, job.probabilities) == (
        request.kind,
        request.dataset_id,
        request.model_id,
        request.params,
        request.probabilities,
    )


class SchedulerService(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, ctx: SchedulerContext):
        self.nc = ctx.nc
        self.js = ctx.js
        self.jobs = ctx.jobs
        self.requests = ctx.requests
        self.admission = Admission(ctx)
        self.cache = FitCache(ctx)
        self.config = ctx.config
        self.live = ctx.live
        self.deletion = Deletion(ctx, self.admission)

    @errors.handle_errors
    async def SubmitJob(self, request, context):
        """Admit, record, then queue: the record is what makes the job
        accepted (a publish that fails is done later by reconciliation)."""
        tenant = request.tenant or DEFAULT_TENANT
        admitted = await self.admission.admit(request, tenant)
        self._check_active_quota(tenant)
        job = await self._new_record(request, tenant, admitted)
        # A deterministic fit may be answered by a fit of the same data and
        # parameters (fit_cache.py).
        key = source = None
        if cacheable(request):
            key = cache_key(tenant, admitted.dataset_sha256, request.params)
            source = await retrying(lambda: self.cache.source(key, tenant), "reading the fit cache")
        if source is not None:
            self.cache.answer(job, source)
        try:
            revision = await retrying(
                lambda: self.jobs.create(bus.record_key(tenant, job.id), encode(job)),
                f"recording {job.id}",
                within=10.0,
            )
        except KeyWrongLastSequenceError:  # an earlier submit with this request_id recorded it
            return scheduler_pb2.SubmitJobResponse(
                job=await self._resubmitted(job.id, tenant, request)
            )
        remember(self.jobs, job, revision)  # its first fold starts from it
        metrics.submitted(job)
        if job.state == jobs_pb2.JOB_STATE_QUEUED:
            self.live.submitted(job)
        if job.cached_from:
            await self._answered_from_cache(job)
        else:
            if key is not None:
                await retrying(lambda: self.cache.remember(key, job.id), "recording the fit cache")
            await self._queue(job)
        return scheduler_pb2.SubmitJobResponse(job=job)

    async def _new_record(
        self, request: scheduler_pb2.SubmitJobRequest, tenant: str, admitted: Admitted
    ) -> records_pb2.JobRecord:
        """The QUEUED record of an admitted submit (an earlier submit's id if
        it carries the same request_id)."""
        job_id, created = new_record_id(JOBS.id_prefix)
        if request.request_id:
            job_id = await self._claim(tenant, request.request_id, job_id)
            # An earlier submit's job keeps the time its id was made at.
            created = id_time(job_id) or created
        return records_pb2.JobRecord(
            id=job_id,
            kind=request.kind,
            state=jobs_pb2.JOB_STATE_QUEUED,
            dataset_id=request.dataset_id,
            model_id=request.model_id,
            params=request.params,
            create_time=created,
            progress_message="waiting for a trainer",
            lane=admitted.lane,
            tenant=tenant,
            request_id=request.request_id,
            model_attempt=admitted.model_attempt,
            model_source_id=admitted.model_source_id,
            model_sha256=admitted.model_sha256,
            timeout_seconds=admitted.timeout_seconds,
            probabilities=request.probabilities,
            # This call's server span (tracing on): the job's trace.
            traceparent=current_traceparent(),
        )

    async def _answered_from_cache(self, job: records_pb2.JobRecord) -> None:
        with job_context(job.id):
            log.info("fit %s answered by the fit cache: %s", job.id, job.cached_from)
        if job.state == jobs_pb2.JOB_STATE_SUCCEEDED:
            metrics.ended(job, CACHED)
        else:  # reconciliation finishes this if it fails
            await retrying(lambda: self.cache.follow(job), f"waiting on {job.cached_from}")

    async def _queue(self, job: records_pb2.JobRecord) -> None:
        """Publish the recorded job; if that fails even after retries, the
        scheduler's reconciliation queues it later."""
        with job_context(job.id):
            try:
                await job_queue.publish(self.js, job, within=SUBMIT_PUBLISH_SECONDS)
            except Exception as exc:  # noqa: BLE001 - logged; reconciliation will publish it
                log.error(
                    "could not queue %s yet (%s); it will be queued by reconciliation", job.id, exc
                )
            log.info("queued %s job %s for tenant %s", kind_name(job.kind), job.id, job.tenant)

    def _check_active_quota(self, tenant: str) -> None:
        limit = self.config.quota_active_jobs
        active = self.live.count(tenant)
        if active >= limit:
            raise errors.quota_exceeded(
                tenant,
                SCHEMA.env("quota_active_jobs"),
                limit,
                active + 1,
                "jobs queued or running",
                "cancel jobs you no longer need (`fityard cancel --all --state QUEUED`, "
                "Client.cancel_all) or submit again when some have finished",
            )

    async def _claim(self, tenant: str, request_id: str, job_id: str) -> str:
        """The job id `request_id` names: `job_id` if this is its first
        submit (recorded now, create-if-absent), else the earlier submit's.

        The earlier submit may not have recorded its job yet, or never will
        (its scheduler died in between): the caller then records the job
        under that id itself, and whichever of the two records it first is
        the one both return."""
        key = bus.request_key(tenant, request_id)
        try:
            await retrying(
                lambda: self.requests.create(key, job_id.encode()),
                f"recording request {request_id!r}",
                within=10.0,
            )
            return job_id
        except KeyWrongLastSequenceError:  # (or our own create, retried after a timeout)
            entry = await retrying(lambda: self.requests.get(key), "reading a request id")
            return entry.value.decode()

    async def _resubmitted(self, job_id: str, tenant: str, request) -> records_pb2.JobRecord:
        """The job an earlier submit with the same request_id created."""
        found = await get_record(self.jobs, tenant, job_id, records_pb2.JobRecord)
        if found is None or not _same_request(found[0], request):
            raise errors.invalid_argument(
                "request_id",
                f"{request.request_id!r} was already used for a different request; use a new id for a new job",
            )
        log.info("submit of %s repeated with its request_id: returning the job", job_id)
        return found[0]

    @for_job()
    @errors.handle_errors
    async def CancelJob(self, request, context):
        tenant = request.tenant or DEFAULT_TENANT
        job_id = errors.check_id("job_id", request.job_id, JOBS)
        was: list[int] = []

        def cancel(job: records_pb2.JobRecord) -> bool:
            was[:] = [job.state]
            if job.state in TERMINAL_STATES:
                return False
            job.state = jobs_pb2.JOB_STATE_CANCELLED
            job.end_time.CopyFrom(now())
            job.progress_message = "cancelled by the user"
            return True

        job = await update_job(self.jobs, tenant, job_id, cancel)
        if job is None:
            raise errors.not_found(JOBS, job_id)
        if was[0] in TERMINAL_STATES:
            raise errors.failed_precondition(
                JOBS.name(job_id),
                "JOB_ENDED",
                f"{JOBS.name(job_id)} has already ended ({state_name(was[0])}); there is nothing to cancel",
            )
        metrics.ended(job)
        self.live.ended(job)
        await self.cache.settle_followers(job)  # they train on their own now (never raises)
        # The record says CANCELLED: that alone stops the job (a trainer
        # checks the record before it starts a job and at every heartbeat).
        # Taking the message off the queue and telling the trainers at once
        # only make it quicker, so their failure is logged, not raised.
        try:
            await job_queue.remove(self.js, job)
            await self.nc.publish(bus.cancel_subject(tenant, job_id))
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "cancelled %s; telling the trainers failed (%s): they see it in the record",
                job_id,
                exc,
            )
        log.info("cancelled job %s (was %s)", job_id, state_name(was[0]))
        return scheduler_pb2.CancelJobResponse(job=job)

    @for_job()
    @errors.handle_errors
    async def DeleteJob(self, request, context):
        job_id = errors.check_id("job_id", request.job_id, JOBS)
        await self.deletion.delete_job(request.tenant or DEFAULT_TENANT, job_id)
        return scheduler_pb2.DeleteJobResponse()

    @errors.handle_errors
    async def DeleteDataset(self, request, context):
        dataset_id = errors.check_id("dataset_id", request.dataset_id, DATASETS)
        await self.deletion.delete_dataset(request.tenant or DEFAULT_TENANT, dataset_id)
        return scheduler_pb2.DeleteDatasetResponse()
