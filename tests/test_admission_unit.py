"""Admission (services/scheduler/admission.py) without a stack: what a submit
is refused for, and how long an admitted job may run. The KV buckets are
dictionaries behind the one call admission makes (get)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from google.rpc import error_details_pb2

from fityard.v1 import datasets_pb2, jobs_pb2
from services.common import errors
from services.common.config import Config
from services.internal.v1 import records_pb2, scheduler_pb2
from services.scheduler.admission import (
    DEFAULT_MAX_ITER,
    DERIVED_TIMEOUT_CAP_SECONDS,
    SECONDS_PER_CELL_ROUND,
    TIMEOUT_FLOOR_SECONDS,
    Admission,
    derived_timeout,
)
from tests.support.fake_kv import TENANT, FakeBucket

S = jobs_pb2


def _dataset(dataset_id="ds_train", rows=1000, columns=10, y=True) -> records_pb2.DatasetRecord:
    """A dataset of `columns` columns: col_0.. and, with `y`, the target last."""
    names = [f"col_{i}" for i in range(columns - 1 if y else columns)] + (["y"] if y else [])
    return records_pb2.DatasetRecord(
        id=dataset_id,
        tenant=TENANT,
        rows=rows,
        columns=[datasets_pb2.Column(name=name, type="double") for name in names],
    )


def _fit_job(job_id="job_fit", state=S.JOB_STATE_SUCCEEDED, **fields) -> records_pb2.JobRecord:
    return records_pb2.JobRecord(
        id=job_id, tenant=TENANT, kind=S.JOB_KIND_FIT, state=state, **fields
    )


def _admission(*, datasets=(), jobs=(), **config) -> Admission:
    ctx = SimpleNamespace(
        datasets=FakeBucket(datasets), jobs=FakeBucket(jobs), config=Config(**config)
    )
    return Admission(ctx)


def _fit(dataset_id="ds_train", **fields) -> scheduler_pb2.SubmitJobRequest:
    return scheduler_pb2.SubmitJobRequest(
        tenant=TENANT, kind=S.JOB_KIND_FIT, dataset_id=dataset_id, **fields
    )


def _predict(model_id="job_fit", dataset_id="ds_train") -> scheduler_pb2.SubmitJobRequest:
    return scheduler_pb2.SubmitJobRequest(
        tenant=TENANT, kind=S.JOB_KIND_PREDICT, dataset_id=dataset_id, model_id=model_id
    )


def _refusal(admission: Admission, request) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as raised:
        asyncio.run(admission.admit(request, TENANT))
    return raised.value


def _detail(error: errors.ApiError, cls):
    (found,) = [d for d in error.details if isinstance(d, cls)]
    return found


def _violations(error: errors.ApiError) -> list[tuple[str, str]]:
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    bad = _detail(error, error_details_pb2.BadRequest)
    return [(v.field, v.description) for v in bad.field_violations]


# -- refusals ---------------------------------------------------------------------


def test_a_bad_parameter_is_refused_naming_it():
    error = _refusal(_admission(datasets=[_dataset()]), _fit(params=S.FitParams(max_bins=1000)))
    assert _violations(error) == [("params.max_bins", "must be between 2 and 255 (got 1000)")]
    assert error.message == "params.max_bins: must be between 2 and 255 (got 1000)"


def test_every_bad_parameter_is_named_at_once():
    params = S.FitParams(max_bins=1, learning_rate=0.0, early_stopping="maybe")
    error = _refusal(_admission(datasets=[_dataset()]), _fit(params=params))
    assert sorted(f for f, _ in _violations(error)) == [
        "params.early_stopping",
        "params.learning_rate",
        "params.max_bins",
    ]


def test_a_parameter_this_server_does_not_know_is_refused_not_ignored():
    params = S.FitParams.FromString(b"\xd0\x02\x07")  # field 42, from other protos
    ((field, description),) = _violations(
        _refusal(_admission(datasets=[_dataset()]), _fit(params=params))
    )
    assert field == "params.42" and "max_bins" in description


@pytest.mark.parametrize(
    "request_, field",
    [
        (scheduler_pb2.SubmitJobRequest(tenant=TENANT, dataset_id="ds_train"), "kind"),
        (scheduler_pb2.SubmitJobRequest(tenant=TENANT, kind=S.JOB_KIND_FIT), "dataset_id"),
        (_predict(model_id=""), "model_id"),
    ],
    ids=["no-kind", "no-dataset", "predict-without-model"],
)
def test_a_missing_field_is_refused_naming_it(request_, field):
    error = _refusal(_admission(datasets=[_dataset()]), request_)
    assert [f for f, _ in _violations(error)] == [field]


def test_an_unknown_dataset_is_not_found_by_its_resource_name():
    error = _refusal(_admission(), _fit("ds_gone"))
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.message.startswith("datasets/ds_gone not found; upload the file first")
    info = _detail(error, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("fityard.v1.Dataset", "datasets/ds_gone")


def test_an_unknown_model_is_not_found_as_the_fit_job_it_would_be():
    error = _refusal(_admission(datasets=[_dataset()]), _predict("job_gone"))
    assert error.code == grpc.StatusCode.NOT_FOUND
    info = _detail(error, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("fityard.v1.Job", "jobs/job_gone")
    assert "jobs/job_gone" in error.message


def test_a_predict_job_is_no_model():
    predict = records_pb2.JobRecord(id="job_p", tenant=TENANT, kind=S.JOB_KIND_PREDICT)
    error = _refusal(_admission(datasets=[_dataset()], jobs=[predict]), _predict("job_p"))
    ((field, description),) = _violations(error)
    assert field == "model_id" and description.startswith("jobs/job_p is a predict job")


@pytest.mark.parametrize(
    "state, says",
    [
        (S.JOB_STATE_RUNNING, "wait for it to succeed"),
        (S.JOB_STATE_FAILED, "it failed: no column y"),
    ],
)
def test_a_model_whose_fit_has_not_succeeded_is_a_failed_precondition(state, says):
    fit = _fit_job(state=state, error="no column y" if state == S.JOB_STATE_FAILED else "")
    error = _refusal(_admission(datasets=[_dataset()], jobs=[fit]), _predict())
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "jobs/job_fit" in error.message and says in error.message
    (violation,) = _detail(error, error_details_pb2.PreconditionFailure).violations
    assert (violation.type, violation.subject) == ("MODEL_NOT_READY", "jobs/job_fit")


@pytest.mark.parametrize("asked", [-1.0, 3601.0])
def test_a_run_limit_beyond_the_servers_is_refused(asked):
    admission = _admission(datasets=[_dataset()], max_job_timeout_seconds=3600.0)
    ((field, description),) = _violations(_refusal(admission, _fit(timeout_seconds=asked)))
    assert field == "timeout_seconds" and "3600" in description


# -- what an admitted job is queued with ---------------------------------------------


def test_a_predict_job_uses_the_attempt_of_its_model_that_counts():
    fit = _fit_job(attempts=3, output_attempt=2)
    admitted = asyncio.run(_admission(datasets=[_dataset()], jobs=[fit]).admit(_predict(), TENANT))
    assert admitted.model_attempt == 2


def test_a_model_recorded_before_output_attempt_existed_counts_its_last_attempt():
    admitted = asyncio.run(
        _admission(datasets=[_dataset()], jobs=[_fit_job(attempts=2)]).admit(_predict(), TENANT)
    )
    assert admitted.model_attempt == 2


def test_a_run_limit_asked_for_within_the_servers_is_kept():
    admission = _admission(datasets=[_dataset()], max_job_timeout_seconds=3600.0)
    admitted = asyncio.run(admission.admit(_fit(timeout_seconds=90.0), TENANT))
    assert (admitted.timeout_seconds, admitted.model_attempt) == (90.0, 0)


def test_a_dataset_is_read_once_then_remembered():
    admission = _admission(datasets=[_dataset()])
    for _ in range(3):
        asyncio.run(admission.admit(_fit(), TENANT))
    assert admission.datasets.gets == 1


# -- the derived run limit -----------------------------------------------------------


def test_the_derived_limit_grows_with_rows_columns_and_rounds():
    dataset = _dataset(rows=200_000, columns=50)
    limit = 7 * 24 * 3600.0
    work = 200_000 * 50 * SECONDS_PER_CELL_ROUND
    assert (
        derived_timeout(_fit(), dataset, limit) == TIMEOUT_FLOOR_SECONDS + work * DEFAULT_MAX_ITER
    )
    many = _fit(params=S.FitParams(max_iter=1000))
    assert derived_timeout(many, dataset, limit) == TIMEOUT_FLOOR_SECONDS + work * 1000
    # a predict job is one pass over the data
    assert derived_timeout(_predict(), dataset, limit) == TIMEOUT_FLOOR_SECONDS + work


def test_the_derived_limit_is_at_least_the_floor_and_at_most_a_day_and_the_servers_limit():
    runaway = _fit(params=S.FitParams(max_iter=2**31 - 1))
    big = _dataset(rows=10**6, columns=100)
    assert derived_timeout(_fit(), _dataset(rows=0, columns=0), 1e9) == TIMEOUT_FLOOR_SECONDS
    assert derived_timeout(runaway, big, 1e9) == DERIVED_TIMEOUT_CAP_SECONDS
    assert derived_timeout(runaway, big, 3600.0) == 3600.0


def test_an_admitted_fit_without_a_limit_gets_the_derived_one():
    admission = _admission(datasets=[_dataset(rows=1000, columns=10)])
    admitted = asyncio.run(admission.admit(_fit(), TENANT))
    expected = TIMEOUT_FLOOR_SECONDS + 1000 * 10 * DEFAULT_MAX_ITER * SECONDS_PER_CELL_ROUND
    assert admitted.timeout_seconds == pytest.approx(expected)


# -- fail early: what the recorded schema shows, refused with the trainer's words --


def _trainer_says(tmp_path, frame, model_features=None) -> str:
    """The DataError ml.fit (or ml.predict on a model trained on
    `model_features`) raises for this DataFrame: the trainer's message."""
    import pandas as pd

    import ml

    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ml.DataError) as raised:
        if model_features is None:
            ml.fit(path, tmp_path / "model.joblib")
        else:
            train = pd.DataFrame(
                {**{n: [0.0, 1.0, 0.0, 1.0] for n in model_features}, "y": [0, 1, 0, 1]}
            )
            train.to_parquet(tmp_path / "train.parquet", index=False)
            ml.fit(tmp_path / "train.parquet", tmp_path / "model.joblib")
            ml.predict(tmp_path / "model.joblib", path, tmp_path / "out.parquet")
    return str(raised.value)


def _schema_of(frame) -> records_pb2.DatasetRecord:
    return records_pb2.DatasetRecord(
        id="ds_train",
        tenant=TENANT,
        rows=len(frame),
        columns=[datasets_pb2.Column(name=str(n), type="double") for n in frame.columns],
    )


@pytest.mark.parametrize(
    "columns, rows",
    [
        (["col_0", "col_1", "Y "], 3),  # no y (a near miss, named in the hint)
        (["y"], 3),  # no feature
        (["col_0", "y"], 0),  # no rows
    ],
)
def test_a_fit_the_schema_rules_out_is_refused_with_the_trainers_message(tmp_path, columns, rows):
    import pandas as pd

    frame = pd.DataFrame({name: [0.0, 1.0, 0.0][:rows] for name in columns})
    error = _refusal(_admission(datasets=[_schema_of(frame)]), _fit())
    ((field, description),) = _violations(error)
    assert field == "dataset_id"
    assert description == _trainer_says(tmp_path, frame)


def test_a_predict_lacking_a_feature_of_the_model_is_refused_naming_it(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"col_1": [0.5], "extra": [1.0]})
    model = _fit_job(features=["col_0", "col_1"], attempts=1)
    error = _refusal(_admission(datasets=[_schema_of(frame)], jobs=[model]), _predict())
    ((field, description),) = _violations(error)
    assert (
        field == "dataset_id" and "missing 1 column the model was trained on: col_0" in description
    )
    assert description == _trainer_says(tmp_path, frame, model_features=["col_0", "col_1"])


def test_a_predict_with_every_feature_or_a_model_without_a_recorded_list_is_admitted():
    dataset = _dataset(columns=3, y=False)  # col_0, col_1, col_2
    with_list = _fit_job(features=["col_2", "col_0"], attempts=1)
    asyncio.run(_admission(datasets=[dataset], jobs=[with_list]).admit(_predict(), TENANT))
    older = _fit_job(attempts=1)  # recorded before features were kept: the trainer checks
    asyncio.run(_admission(datasets=[dataset], jobs=[older]).admit(_predict(), TENANT))


def test_the_lane_is_chosen_by_the_work_rows_columns_rounds():
    admission = _admission(datasets=[_dataset(rows=1000, columns=10)], small_job_cells=1e6)
    # 1,000 x 10 x 100 rounds = 1e6: small; one more round is not
    assert asyncio.run(admission.admit(_fit(), TENANT)).lane == "small"
    big = _fit(params=jobs_pb2.FitParams(max_iter=101))
    assert asyncio.run(admission.admit(big, TENANT)).lane == "default"
    model = _fit_job(attempts=1)
    admission = _admission(datasets=[_dataset(rows=1000, columns=10)], jobs=[model])
    assert asyncio.run(admission.admit(_predict(), TENANT)).lane == "small"  # one round
