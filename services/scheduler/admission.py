"""Admission: the checks a job must pass before it is queued, and the limits
it is queued with.

Everything a user can get wrong in a submit request is caught here, before a
trainer spends time on it, with a message that names the field or id. So is
what the dataset's recorded schema already shows (no `y`, no feature, no
rows, a feature the model needs missing): ml.columns gives the very message
the trainer would. What only the values show (one class, text where numbers
belong) is found by the trainer, which reads the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.unknown_fields import UnknownFieldSet

from fityard.v1 import jobs_pb2
from ml.columns import check_prediction_columns, check_training_columns
from ml.messages import DataError
from ml.params import validate_params
from services.common import errors
from services.common.config import DEFAULT_LANE, SMALL_LANE
from services.common.jobs import output_attempt, output_owner, params_dict
from services.common.models import succeeded_fit
from services.common.records import get_record
from services.common.resources import DATASETS
from services.internal.v1 import records_pb2, scheduler_pb2

if TYPE_CHECKING:
    from .context import SchedulerContext

# Seconds a job may run per (row x column x boosting round), before the
# floor and the cap. Hundreds of times what a fit takes on one core, so the
# derived limit stops only runaway jobs (max_iter=2**31-1 without early
# stopping), never a healthy one on a slow machine.
SECONDS_PER_CELL_ROUND = 1e-6
TIMEOUT_FLOOR_SECONDS = 600.0
# A derived limit is at most a day; users who need more ask for it.
DERIVED_TIMEOUT_CAP_SECONDS = 24 * 3600.0
# scikit-learn's default max_iter for HistGradientBoostingClassifier.
DEFAULT_MAX_ITER = 100

_KNOWN_DATASETS_MAX = 100_000
# An INTERACTIVE job runs at once on one thread beside the jobs holding the
# cores: up to this many times a small job's work.
INTERACTIVE_MAX_FACTOR = 10


@dataclass(frozen=True)
class Admitted:
    """What the scheduler needs to queue an admitted job."""

    timeout_seconds: float
    # The lane it is queued on: small if its work is at most
    # FITYARD_SMALL_JOB_CELLS, so toy jobs never wait behind long ones.
    lane: str = DEFAULT_LANE
    # Predict jobs: the attempt of the model's fit whose output is the model,
    # and the job under whose keys it is stored (output_owner).
    model_attempt: int = 0
    model_source_id: str = ""
    model_sha256: str = ""
    # The dataset's content digest (the fit cache's key is made of it).
    dataset_sha256: str = ""


class Admission:
    """Admits jobs against the dataset and job records."""

    def __init__(self, ctx: SchedulerContext):
        self.jobs = ctx.jobs
        self.datasets = ctx.datasets
        self.config = ctx.config
        # Datasets never change once stored, so one seen once need not be
        # read again: saves a KV round trip per submit. Only the scheduler
        # deletes them (deletion.py), and forgets them here as it does.
        self._datasets: dict[tuple[str, str], records_pb2.DatasetRecord] = {}

    def forget_dataset(self, tenant: str, dataset_id: str) -> None:
        self._datasets.pop((tenant, dataset_id), None)

    async def admit(self, request: scheduler_pb2.SubmitJobRequest, tenant: str) -> Admitted:
        """Raise ApiError if the request cannot become a job."""
        if request.kind not in (jobs_pb2.JOB_KIND_FIT, jobs_pb2.JOB_KIND_PREDICT):
            raise errors.invalid_argument("kind", "must be JOB_KIND_FIT or JOB_KIND_PREDICT")
        if not request.dataset_id:
            raise errors.invalid_argument(
                "dataset_id", "is required: the id returned by DatasetService.Upload"
            )
        dataset = await self._dataset(request.dataset_id, tenant)
        columns = [column.name for column in dataset.columns]
        if request.kind == jobs_pb2.JOB_KIND_FIT:
            problems = [_split_problem(p) for p in validate_params(params_dict(request.params))]
            problems += _unknown_params(request.params)
            if problems:
                raise errors.invalid_arguments(problems)
            _check_data(check_training_columns, columns, dataset.rows)
            return Admitted(
                self._timeout(request, dataset),
                self._lane(request, dataset),
                dataset_sha256=dataset.sha256,
            )
        model = await self._model(request.model_id, tenant)
        if model.features:  # fits recorded before features were kept: the trainer checks
            _check_data(check_prediction_columns, columns, model.features, dataset.rows)
        return Admitted(
            self._timeout(request, dataset),
            self._lane(request, dataset),
            model_attempt=output_attempt(model),
            model_source_id=output_owner(model),
            model_sha256=model.model_sha256,
            dataset_sha256=dataset.sha256,
        )

    async def _dataset(self, dataset_id: str, tenant: str) -> records_pb2.DatasetRecord:
        known = self._datasets.get((tenant, dataset_id))
        if known is not None:
            return known
        found = await get_record(self.datasets, tenant, dataset_id, records_pb2.DatasetRecord)
        if found is None:
            raise errors.not_found(
                DATASETS, dataset_id, "upload the file first and use the id Upload returns"
            )
        if len(self._datasets) >= _KNOWN_DATASETS_MAX:
            self._datasets.clear()
        self._datasets[(tenant, dataset_id)] = found[0]
        return found[0]

    async def _model(self, model_id: str, tenant: str) -> records_pb2.JobRecord:
        return await succeeded_fit(self.jobs, tenant, model_id)

    def _lane(
        self, request: scheduler_pb2.SubmitJobRequest, dataset: records_pb2.DatasetRecord
    ) -> str:
        """The lane of the priority asked for, else of the job's size."""
        work = work_cells(request, dataset)
        if request.priority == jobs_pb2.PRIORITY_BATCH:
            return DEFAULT_LANE
        if request.priority == jobs_pb2.PRIORITY_INTERACTIVE:
            most = INTERACTIVE_MAX_FACTOR * self.config.small_job_cells
            if work > most:
                raise errors.invalid_argument(
                    "priority",
                    f"PRIORITY_INTERACTIVE is for jobs of at most {most:,.0f} cells of work "
                    f"(rows x columns x boosting rounds: {INTERACTIVE_MAX_FACTOR} x "
                    f"FITYARD_SMALL_JOB_CELLS); this one is {work:,}: submit it as "
                    "PRIORITY_BATCH or leave the priority unset",
                )
            return SMALL_LANE
        if request.priority != jobs_pb2.PRIORITY_UNSPECIFIED:
            raise errors.invalid_argument(
                "priority", f"{request.priority} is not a Priority this server knows"
            )
        return SMALL_LANE if work <= self.config.small_job_cells else DEFAULT_LANE

    def _timeout(
        self, request: scheduler_pb2.SubmitJobRequest, dataset: records_pb2.DatasetRecord
    ) -> float:
        """The job's run-time limit: the one asked for, else one derived from
        the work (rows x columns x boosting rounds), within the server's cap."""
        limit = self.config.max_job_timeout_seconds
        if request.timeout_seconds:
            if not 0 < request.timeout_seconds <= limit:
                raise errors.invalid_argument(
                    "timeout_seconds",
                    f"must be between 0 (derived from the data size) and {limit:g} seconds, the server's limit "
                    f"(FITYARD_MAX_JOB_TIMEOUT_SECONDS); got {request.timeout_seconds:g}",
                )
            return request.timeout_seconds
        return derived_timeout(request, dataset, limit)


def derived_timeout(
    request: scheduler_pb2.SubmitJobRequest, dataset: records_pb2.DatasetRecord, limit: float
) -> float:
    """TIMEOUT_FLOOR_SECONDS plus SECONDS_PER_CELL_ROUND for each row x
    column x boosting round (one round for a predict job), at most a day
    and at most `limit`."""
    work = work_cells(request, dataset) * SECONDS_PER_CELL_ROUND
    return min(TIMEOUT_FLOOR_SECONDS + work, DERIVED_TIMEOUT_CAP_SECONDS, limit)


def work_cells(request: scheduler_pb2.SubmitJobRequest, dataset: records_pb2.DatasetRecord) -> int:
    """A job's work, estimated before it runs: rows x columns x boosting
    rounds (max_iter, or scikit-learn's default; one round for a predict).
    Early stopping can only make a fit cheaper than this."""
    rounds = 1
    if request.kind == jobs_pb2.JOB_KIND_FIT:
        rounds = (
            request.params.max_iter if request.params.HasField("max_iter") else DEFAULT_MAX_ITER
        )
    return dataset.rows * max(1, len(dataset.columns)) * rounds


def _check_data(check, *args) -> None:
    """INVALID_ARGUMENT naming dataset_id, with the trainer's own message,
    for a dataset whose schema `check` (ml.columns) refuses."""
    try:
        check(*args)
    except DataError as exc:
        raise errors.invalid_argument("dataset_id", str(exc)) from None


def _unknown_params(params: jobs_pb2.FitParams) -> list[tuple[str, str]]:
    """Fields a client set that this server's FitParams does not have (a
    client built from newer or foreign protos). Ignoring them would train
    with defaults the user did not ask for, so they are refused."""
    numbers = sorted({field.field_number for field in UnknownFieldSet(params)})
    known = ", ".join(params.DESCRIPTOR.fields_by_name)
    return [
        (
            f"params.{number}",
            f"field number {number} is not a fit parameter this server knows; known: {known}",
        )
        for number in numbers
    ]


def _split_problem(problem: str) -> tuple[str, str]:
    """ "params.max_bins must be …" -> ("params.max_bins", "must be …")."""
    field, _, rest = problem.partition(" ")
    return field, rest or problem
