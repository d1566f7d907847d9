"""A model is a succeeded fit job: finding one by id, for the scheduler (a
predict job's admission) and the predictors (an online prediction), with one
set of refusals: NOT_FOUND for an unknown id, INVALID_ARGUMENT for a predict
job's id, FAILED_PRECONDITION for a fit that has not succeeded (saying why).
"""

from __future__ import annotations

from nats.js.kv import KeyValue

from fityard.v1 import jobs_pb2
from services.internal.v1 import records_pb2

from . import errors
from .jobs import output_attempt, output_owner, state_name
from .keys import model_key
from .records import get_record
from .resources import JOBS


async def succeeded_fit(jobs: KeyValue, tenant: str, model_id: str) -> records_pb2.JobRecord:
    """The record of the succeeded fit `model_id` of `tenant`, or the ApiError to answer."""
    if not model_id:
        raise errors.invalid_argument("model_id", "is required: the id of a succeeded fit job")
    found = await get_record(jobs, tenant, model_id, records_pb2.JobRecord)
    if found is None:
        raise errors.not_found(
            JOBS, model_id, "model_id must name a fit job: a model's id is its fit job's id"
        )
    model_job, _ = found
    if model_job.kind != jobs_pb2.JOB_KIND_FIT:
        raise errors.invalid_argument(
            "model_id",
            f"{JOBS.name(model_id)} is a predict job, not a fit job; pass the id of a fit job",
        )
    if model_job.state != jobs_pb2.JOB_STATE_SUCCEEDED:
        state = state_name(model_job.state)
        hint = (
            f"it failed: {model_job.error}"
            if model_job.state == jobs_pb2.JOB_STATE_FAILED
            else "wait for it to succeed (fityard watch / Job.wait()) and submit again"
        )
        raise errors.failed_precondition(
            JOBS.name(model_id),
            "MODEL_NOT_READY",
            f"model {JOBS.name(model_id)} is not ready: the fit job is {state}; {hint}",
        )
    return model_job


def stored_model_key(tenant: str, fit: records_pb2.JobRecord) -> str:
    """Where a succeeded fit's model file is (a cached fit's: its source's)."""
    return model_key(tenant, output_owner(fit), output_attempt(fit))
