"""Deleting what a user no longer needs: an ended job with its outputs, a
dataset with its file; the store is freed at once.

The scheduler does it, not the gateway, because it owns the job records
and keeps things of its own about datasets (admission's cache, which must
forget a deleted one). Nothing a live job needs is deleted: a dataset a
job that has not ended uses, a job that has not ended, a model a live
predict or a cached fit uses are refused with FAILED_PRECONDITION naming
who uses them. A job submitted in the instant between the check and the
deletion fails in its trainer with "not found", not silently.

The record goes first, then the objects: a failure in between leaves an
object no record names (logged), never a record whose file is gone.
"""

from __future__ import annotations

import asyncio
import logging

from fityard.v1 import jobs_pb2
from services.common import errors
from services.common.bus import record_key
from services.common.digests import DigestIndex
from services.common.jobs import TERMINAL_STATES, state_name
from services.common.keys import dataset_key, output_prefixes
from services.common.records import get_record, list_records
from services.common.resources import DATASETS, JOBS
from services.internal.v1 import records_pb2

from .admission import Admission
from .context import SchedulerContext

log = logging.getLogger(__name__)

# Jobs named in a refusal, at most.
NAMED = 5


def _names(jobs: list[records_pb2.JobRecord]) -> str:
    shown = ", ".join(f"{JOBS.name(j.id)} ({state_name(j.state)})" for j in jobs[:NAMED])
    return shown + (f" and {len(jobs) - NAMED} more" if len(jobs) > NAMED else "")


class Deletion:
    def __init__(self, ctx: SchedulerContext, admission: Admission):
        self.jobs = ctx.jobs
        self.datasets = ctx.datasets
        self.store = ctx.store
        self.digests = DigestIndex(ctx.digests, ctx.datasets)
        self.admission = admission

    async def delete_dataset(self, tenant: str, dataset_id: str) -> None:
        found = await get_record(self.datasets, tenant, dataset_id, records_pb2.DatasetRecord)
        if found is None:
            raise errors.not_found(DATASETS, dataset_id)
        dataset = found[0]
        users = [
            job
            for job in await list_records(self.jobs, tenant, records_pb2.JobRecord)
            if job.dataset_id == dataset_id and job.state not in TERMINAL_STATES
        ]
        if users:
            raise errors.failed_precondition(
                DATASETS.name(dataset_id),
                "DATASET_IN_USE",
                f"{DATASETS.name(dataset_id)} is used by {_names(users)}; cancel "
                f"{'it' if len(users) == 1 else 'them'} or wait for the end, then delete it",
            )
        await self.datasets.delete(record_key(tenant, dataset_id))
        self.admission.forget_dataset(tenant, dataset_id)
        await self.digests.forget(tenant, dataset.sha256, dataset_id)
        await asyncio.to_thread(self.store.delete, dataset_key(tenant, dataset_id))
        log.info("deleted dataset %s (%d bytes freed)", dataset_id, dataset.size_bytes)

    async def delete_job(self, tenant: str, job_id: str) -> None:
        found = await get_record(self.jobs, tenant, job_id, records_pb2.JobRecord)
        if found is None:
            raise errors.not_found(JOBS, job_id)
        job = found[0]
        if job.state not in TERMINAL_STATES:
            raise errors.failed_precondition(
                JOBS.name(job_id),
                "JOB_NOT_ENDED",
                f"{JOBS.name(job_id)} is {state_name(job.state)}; cancel it first, then delete it",
            )
        if job.kind == jobs_pb2.JOB_KIND_FIT and not job.cached_from:
            await self._check_model_unused(tenant, job)
        await self.jobs.delete(record_key(tenant, job_id))
        if not job.cached_from:  # a cached fit's outputs are the other fit's
            await asyncio.to_thread(self._delete_outputs, tenant, job_id)
        log.info("deleted job %s and its outputs", job_id)

    async def _check_model_unused(self, tenant: str, fit: records_pb2.JobRecord) -> None:
        users = [
            job
            for job in await list_records(self.jobs, tenant, records_pb2.JobRecord)
            if job.cached_from == fit.id
            or (job.state not in TERMINAL_STATES and fit.id in (job.model_id, job.model_source_id))
        ]
        if users:
            raise errors.failed_precondition(
                JOBS.name(fit.id),
                "MODEL_IN_USE",
                f"the model of {JOBS.name(fit.id)} is used by {_names(users)} (predicts that "
                "have not ended, fits answered from the cache with it); delete or wait for them first",
            )

    def _delete_outputs(self, tenant: str, job_id: str) -> None:
        for prefix in output_prefixes(tenant, job_id):
            for key in list(self.store.list(prefix)):
                self.store.delete(key)
