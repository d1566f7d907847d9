"""Admission: the checks a job must pass before it is queued.

Everything a user can get wrong in a submit request is caught here, before a
trainer spends time on it, with a message that names the field or id.
Data-content problems (a missing column) are found by the trainer, which has
the data.
"""
from __future__ import annotations

from google.protobuf.unknown_fields import UnknownFieldSet
from nats.js.kv import KeyValue

from fityard.internal.v1 import scheduler_pb2
from fityard.v1 import datasets_pb2, jobs_pb2
from ml.params import validate_params
from services.common import errors
from services.common.jobs import params_dict, state_name
from services.common.records import get_record


# Datasets never change once stored (and cannot be deleted yet), so one that
# was seen once need not be read again: saves a KV round trip per submit.
# When deletion arrives, this must forget deleted ids (watch the bucket).
_KNOWN_DATASETS: set[tuple[str, str]] = set()
_KNOWN_DATASETS_MAX = 100_000


async def admit(
    request: scheduler_pb2.SubmitJobRequest, tenant: str, jobs: KeyValue, datasets: KeyValue
) -> None:
    """Raise ApiError if the request cannot become a job."""
    if request.kind not in (jobs_pb2.JOB_KIND_FIT, jobs_pb2.JOB_KIND_PREDICT):
        raise errors.invalid_argument("kind", "must be JOB_KIND_FIT or JOB_KIND_PREDICT")
    if not request.dataset_id:
        raise errors.invalid_argument("dataset_id", "is required: the id returned by DatasetService.Upload")
    await _admit_dataset(request.dataset_id, tenant, datasets)
    if request.kind == jobs_pb2.JOB_KIND_FIT:
        problems = [_split_problem(p) for p in validate_params(params_dict(request.params))]
        problems += _unknown_params(request.params)
        if problems:
            raise errors.invalid_arguments(problems)
        return
    await _admit_model(request.model_id, tenant, jobs)


async def _admit_dataset(dataset_id: str, tenant: str, datasets: KeyValue) -> None:
    if (tenant, dataset_id) in _KNOWN_DATASETS:
        return
    if await get_record(datasets, tenant, dataset_id, datasets_pb2.Dataset) is None:
        raise errors.not_found("dataset", dataset_id, "upload the file first and use the id Upload returns")
    if len(_KNOWN_DATASETS) >= _KNOWN_DATASETS_MAX:
        _KNOWN_DATASETS.clear()
    _KNOWN_DATASETS.add((tenant, dataset_id))


async def _admit_model(model_id: str, tenant: str, jobs: KeyValue) -> None:
    if not model_id:
        raise errors.invalid_argument("model_id", "is required: the id of a succeeded fit job")
    found = await get_record(jobs, tenant, model_id, jobs_pb2.Job)
    if found is None:
        raise errors.not_found("model", model_id, "a model id is the id of the fit job that trained it")
    model_job, _ = found
    if model_job.kind != jobs_pb2.JOB_KIND_FIT:
        raise errors.invalid_argument(
            "model_id", f"{model_id!r} is a predict job, not a fit job; pass the id of a fit job"
        )
    if model_job.state != jobs_pb2.JOB_STATE_SUCCEEDED:
        state = state_name(model_job.state)
        hint = (
            f"its fit failed: {model_job.error}"
            if model_job.state == jobs_pb2.JOB_STATE_FAILED
            else "wait for it to succeed (fityard watch / Job.wait()) and submit again"
        )
        raise errors.failed_precondition(
            f"jobs/{model_id}", "MODEL_NOT_READY", f"model {model_id!r} is not ready: its fit job is {state}; {hint}"
        )


def _unknown_params(params: jobs_pb2.FitParams) -> list[tuple[str, str]]:
    """Fields a client set that this server's FitParams does not have (a
    client built from newer or foreign protos). Ignoring them would train
    with defaults the user did not ask for, so they are refused."""
    numbers = sorted({field.field_number for field in UnknownFieldSet(params)})
    known = ", ".join(params.DESCRIPTOR.fields_by_name)
    return [
        (f"params.{number}", f"field number {number} is not a fit parameter this server knows; known: {known}")
        for number in numbers
    ]


def _split_problem(problem: str) -> tuple[str, str]:
    """"params.max_bins must be …" -> ("params.max_bins", "must be …")."""
    field, _, rest = problem.partition(" ")
    return field, rest or problem
