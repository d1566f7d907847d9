"""The SDK against a real stack (both store backends): the seed workflow, and
what a user is told when something is wrong."""

from __future__ import annotations

import hashlib
import time
import uuid

import grpc
import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fityard import Client, Dataset, FityardError, InvalidArgument, Job, JobFailed, NotFound
from fityard.v1 import jobs_pb2, jobs_pb2_grpc
from tests.support.faults import settle
from tests.support.jobs import cores_taken, long_fit, wait_for_state
from tests.support.procs import cpu_used, stack_sessions

pytestmark = pytest.mark.stack

# Small models: these tests are about the service, not about accuracy
# (the full workflow uses the defaults and checks accuracy).
QUICK = {"max_iter": 20}
# Upper bound on any wait, so a stuck job fails the test instead of hanging it.
WAIT_SECONDS = 120
LIFECYCLE = ["QUEUED", "RUNNING", "SUCCEEDED"]


def unknown(prefix: str) -> str:
    """A well-formed id that no server has handed out."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="module")
def client(stack):
    with Client(stack.address) as c:
        yield c


@pytest.fixture(scope="module")
def train_ds(client, seed_files) -> Dataset:
    return client.upload(seed_files["train"])


@pytest.fixture(scope="module")
def test_ds(client, seed_files) -> Dataset:
    return client.upload(seed_files["test"])


@pytest.fixture(scope="module")
def model(client, train_ds) -> Job:
    """A succeeded fit to predict with."""
    return client.fit(train_ds, **QUICK).wait(timeout=WAIT_SECONDS)


@pytest.fixture(scope="module")
def failed_fit(client, seed_files) -> Job:
    """A fit that fails in the trainer: one class in `y` (only the values
    show it, so admission lets it through)."""
    job = client.fit(client.upload(seed_files["one_class_train"]), **QUICK)
    with pytest.raises(JobFailed):
        job.wait(timeout=WAIT_SECONDS)
    return job


def test_full_workflow_predicts_the_held_out_labels(client, seed_files, tmp_path):
    train_path, test_path = seed_files["train"], seed_files["test"]
    train = client.upload(train_path)
    train_meta = pq.ParquetFile(train_path).metadata
    assert train.id.startswith("ds_") and train.name == train_path.name
    assert train.rows == train_meta.num_rows
    assert train.columns == pq.read_schema(train_path).names
    assert train.size_bytes == train_path.stat().st_size
    assert train.sha256 == hashlib.sha256(train_path.read_bytes()).hexdigest()
    assert client.dataset(train.id) == train

    fit = client.fit(train.id)
    assert fit.kind == "fit" and fit.dataset_id == train.id
    assert fit.wait(timeout=WAIT_SECONDS) is fit
    assert fit.state == "SUCCEEDED" and fit.done and fit.progress == pytest.approx(1.0)
    assert fit.attempts >= 1 and "model" in fit.outputs
    assert fit.create_time <= fit.start_time <= fit.end_time

    test = client.upload(test_path)
    pred = client.predict(fit, test.id)
    assert pred.kind == "predict" and pred.model_id == fit.id and pred.dataset_id == test.id
    pred.wait(timeout=WAIT_SECONDS)
    assert pred.state == "SUCCEEDED"

    predicted = client.download(pred)
    truth = pd.read_parquet(test_path)
    assert list(predicted.columns) == ["y"]
    assert len(predicted) == len(truth) == test.rows
    assert (predicted["y"].to_numpy() == truth["y"].to_numpy()).mean() > 0.7

    saved = client.download(pred, tmp_path / "predictions.parquet")
    assert saved == tmp_path / "predictions.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(saved), predicted)

    # The downloaded model is the one that made those predictions.
    model_file = client.download(fit, tmp_path / "model.joblib", output="model")
    estimator = joblib.load(model_file)
    local = estimator.predict(truth.drop(columns=["y"]))
    np.testing.assert_array_equal(local, predicted["y"].to_numpy())


def test_a_fit_the_trainer_cannot_do_fails_saying_why(failed_fit):
    assert failed_fit.state == "FAILED" and failed_fit.done
    assert "at least two classes in 'y'" in failed_fit.error
    # The exception carries the server's message unchanged, and the job.
    with pytest.raises(JobFailed) as raised:
        failed_fit.wait(timeout=WAIT_SECONDS)
    assert str(raised.value) == failed_fit.error
    assert raised.value.job.id == failed_fit.id


def test_bad_train_and_bad_test_are_refused_at_submission_naming_the_column(
    client, model, seed_files
):
    """What the recorded schema already shows is refused before any queue,
    with the message the trainer would give, and no job is made."""
    before = {job.id for job in client.jobs()}
    with pytest.raises(InvalidArgument) as raised:
        client.fit(client.upload(seed_files["bad_train"]), **QUICK)
    assert "training data has no column 'y'" in str(raised.value)
    assert [field for field, _ in raised.value.field_violations] == ["dataset_id"]
    with pytest.raises(InvalidArgument) as raised:
        client.predict(model, client.upload(seed_files["bad_test"]))
    assert "missing 1 column the model was trained on: col_0" in str(raised.value)
    assert {job.id for job in client.jobs()} == before


def test_a_file_that_is_not_parquet_is_refused_and_nothing_is_stored(client, stack, tmp_path):
    text = tmp_path / "notes.csv"
    text.write_text("col_0,y\n" + "0.5,1\n" * 1000)
    name = f"notes-{uuid.uuid4().hex[:8]}.csv"
    stored_before = set(stack.store.list())
    with pytest.raises(FityardError) as raised:
        client.upload(text, name=name)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "parquet" in raised.value.message.lower()
    assert set(stack.store.list()) == stored_before
    assert name not in [d.name for d in client.datasets()]


# What a NotFound's resource says, by the kind of id that was missing.
RESOURCES = {"dataset": ("fityard.v1.Dataset", "datasets"), "job": ("fityard.v1.Job", "jobs")}


@pytest.mark.parametrize(
    "call, missing",
    [
        pytest.param(lambda c, ids: c.dataset(ids["dataset"]), "dataset", id="get-dataset"),
        pytest.param(lambda c, ids: c.job(ids["job"]), "job", id="get-job"),
        pytest.param(lambda c, ids: c.fit(ids["dataset"]), "dataset", id="fit-unknown-dataset"),
        pytest.param(
            lambda c, ids: c.predict(ids["job"], ids["test"]), "job", id="predict-unknown-model"
        ),
        pytest.param(
            lambda c, ids: c.predict(ids["model"], ids["dataset"]),
            "dataset",
            id="predict-unknown-dataset",
        ),
        pytest.param(lambda c, ids: c.download(ids["job"]), "job", id="download"),
        pytest.param(lambda c, ids: c.cancel(ids["job"]), "job", id="cancel"),
        pytest.param(lambda c, ids: c.wait(ids["job"]), "job", id="wait"),
    ],
)
def test_unknown_ids_are_not_found_and_named(client, model, test_ds, call, missing):
    ids = {"dataset": unknown("ds"), "job": unknown("job"), "model": model.id, "test": test_ds.id}
    with pytest.raises(FityardError) as raised:
        call(client, ids)
    assert isinstance(raised.value, NotFound) and raised.value.code == grpc.StatusCode.NOT_FOUND
    assert ids[missing] in raised.value.message
    assert ids[missing] in str(raised.value) and str(raised.value).startswith("NOT_FOUND: ")
    # The status's ResourceInfo names it as the API does (AIP-122), in the
    # message too; a model is its fit job, `jobs/<id>`.
    resource_type, collection = RESOURCES[missing]
    assert raised.value.resource == (resource_type, f"{collection}/{ids[missing]}")
    assert f"{collection}/{ids[missing]}" in raised.value.message


def test_a_bad_parameter_is_refused_naming_it_and_nothing_is_queued(client, train_ds):
    before = {j.id for j in client.jobs()}
    with pytest.raises(InvalidArgument) as raised:
        client.fit(train_ds, max_bins=300)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "params.max_bins" in raised.value.message
    assert [field for field, _ in raised.value.field_violations] == ["params.max_bins"]
    assert {j.id for j in client.jobs()} == before


def test_the_sdk_refuses_a_parameter_that_does_not_exist_before_any_call():
    # No server at this address: the SDK checks names against FitParams itself.
    with Client("127.0.0.1:1") as offline:
        with pytest.raises(InvalidArgument) as raised:
            offline.fit(unknown("ds"), max_iters=50)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "params.max_iters" in raised.value.message
    assert [field for field, _ in raised.value.field_violations] == ["params.max_iters"]


# FitParams with field number 42 set: what a client built from other protos sends.
UNKNOWN_FIELD_42 = jobs_pb2.FitParams.FromString(b"\xd0\x02\x07")


@pytest.mark.parametrize(
    "params, field",
    [
        pytest.param(jobs_pb2.FitParams(max_bins=300), "params.max_bins", id="max_bins-too-large"),
        pytest.param(
            jobs_pb2.FitParams(learning_rate=0.0), "params.learning_rate", id="learning_rate-zero"
        ),
        pytest.param(
            jobs_pb2.FitParams(early_stopping="maybe"),
            "params.early_stopping",
            id="early_stopping-word",
        ),
        pytest.param(UNKNOWN_FIELD_42, "params.42", id="unknown-field"),
    ],
)
def test_the_server_refuses_a_bad_parameter_from_a_raw_stub(stack, train_ds, params, field):
    """The check other-language clients and grpcurl meet: no SDK in between."""
    with grpc.insecure_channel(stack.address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.SubmitFit(jobs_pb2.SubmitFitRequest(dataset_id=train_ds.id, params=params))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(f"{field}: ")
    (detail,) = rpc_status.from_call(raised.value).details
    violations = error_details_pb2.BadRequest()
    assert detail.Unpack(violations)
    assert [v.field for v in violations.field_violations] == [field]


def test_predicting_with_a_model_whose_fit_failed_is_a_failed_precondition(
    client, failed_fit, test_ds
):
    with pytest.raises(FityardError) as raised:
        client.predict(failed_fit, test_ds)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failed_fit.id in raised.value.message


def test_downloading_from_a_failed_job_is_a_failed_precondition(client, failed_fit, tmp_path):
    target = tmp_path / "model.joblib"
    with pytest.raises(FityardError) as raised:
        client.download(failed_fit, target)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failed_fit.id in raised.value.message
    assert not any(tmp_path.iterdir())  # no partial file left behind


def test_watch_reports_each_state_in_order_until_the_job_ends(client, train_ds):
    # Every core busy: the watched job is still QUEUED when the watch starts
    # (a batch job waits for a free core; a small one would run at once).
    # A short fit (on a loaded machine a 400-round one took a minute), but
    # not too short: a small job's start is held back 50 ms for its end
    # (services/scheduler/held_starts.py), and a 20-round fit over within
    # them went from QUEUED to SUCCEEDED on a fast day. 100 rounds: 0.5 s.
    with cores_taken(client, train_ds.id):
        job = client.fit(train_ds, max_iter=100, priority="batch")
        # Bounded: a watch that says nothing until the job ends would block here.
        watch = job.watch(timeout=90)
        first = next(watch)
    snapshots = [first, *watch]
    states = [s.state for s in snapshots]
    assert states[0] == "QUEUED"
    assert states[-1] == "SUCCEEDED" and snapshots[-1].done
    assert not any(s.done for s in snapshots[:-1])
    assert states == sorted(states, key=LIFECYCLE.index)  # never goes back
    assert "RUNNING" in states  # the start is told, however short the run (beyond the hold)
    progress = [s.progress for s in snapshots]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    assert all(s.id == job.id for s in snapshots)
    assert job.state == "SUCCEEDED"  # the watched job is updated too


def test_watch_tells_how_far_a_running_job_has_come(client, train_ds):
    """The watcher is told about the run as it happens, not only at its end:
    the stages before the fit, then the boosting rounds as they go. The job
    runs until it is cancelled, so the watch sees it run however fast the
    machine (the trainer passes on a report at most every 0.5 s)."""
    job = long_fit(client, train_ds.id)
    watch = job.watch(timeout=90)  # bounded: a watch that says nothing fails here
    snapshots, on_the_way = [], []
    try:
        for snapshot in watch:
            snapshots.append(snapshot)
            if snapshot.state == "RUNNING" and 0 < snapshot.progress < 1:
                on_the_way.append(snapshot)
            if len(_rounds(on_the_way)) >= 2:
                break
    finally:
        job.cancel()  # a failed test leaves no endless fit on the shared stack
    assert len(_rounds(on_the_way)) >= 2, [
        (s.state, s.progress, s.progress_message) for s in snapshots
    ]
    progress = [s.progress for s in on_the_way]
    assert progress == sorted(progress)
    snapshots += list(watch)  # the same watch goes on to the end
    assert snapshots[-1].state == "CANCELLED" and snapshots[-1].done
    assert not any(s.done for s in snapshots[:-1])
    progress = [s.progress for s in snapshots[:-1]]
    assert progress == sorted(progress)  # never goes back while it runs


def test_lists_show_what_was_submitted_newest_first(client, train_ds):
    older = client.fit(train_ds, **QUICK)
    newer_ds = client.upload(
        pd.DataFrame({"col_0": [0.0, 1.0, 2.0], "y": [0, 1, 1]}), name="tiny.parquet"
    )
    newer = client.fit(newer_ds, **QUICK)
    job_ids = [j.id for j in client.jobs()]
    assert job_ids.index(newer.id) < job_ids.index(older.id)
    dataset_ids = [d.id for d in client.datasets()]
    assert dataset_ids.index(newer_ds.id) < dataset_ids.index(train_ds.id)
    listed = {j.id: j for j in client.jobs()}[newer.id]
    assert listed.kind == "fit" and listed.dataset_id == newer_ds.id
    for job in (older, newer):
        job.wait(timeout=WAIT_SECONDS)


def test_a_dataframe_uploads_like_a_file(client):
    frame = pd.DataFrame(
        {"col_0": np.linspace(0, 1, 500), "col_1": np.arange(500), "y": np.arange(500) % 2},
        index=np.arange(500) * 2,  # not a RangeIndex: pandas would store it as a column if asked
    )
    ds = client.upload(frame, name="frame.parquet")
    assert ds.name == "frame.parquet"
    assert ds.rows == 500
    assert ds.columns == ["col_0", "col_1", "y"]  # the index is not uploaded
    fit = client.fit(ds, **QUICK).wait(timeout=WAIT_SECONDS)
    assert fit.state == "SUCCEEDED"


def _rounds(snapshots) -> set[str]:
    """The distinct "boosting round k of n" messages among `snapshots`."""
    return {s.progress_message for s in snapshots if "boosting round" in s.progress_message}


def test_a_running_job_can_be_cancelled_and_its_fit_stops(client, stack, train_ds, tmp_path):
    job = wait_for_state(long_fit(client, train_ds.id), "RUNNING")
    sessions = stack_sessions(stack)
    # The fit is busy on the trainers' cores: seen within a deadline, as its
    # worker (at nice 10) may get little CPU for a moment on a loaded machine.
    settle(lambda: cpu_used(sessions, 1.0) > 0.5, 60, "the fit busy on the trainers' cores")

    with pytest.raises(FityardError) as raised:
        client.download(job, tmp_path / "model.joblib")
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(TimeoutError):
        job.wait(timeout=0.5)

    assert client.cancel(job).state == "CANCELLED"
    assert job.wait(timeout=WAIT_SECONDS).state == "CANCELLED"
    # The fit itself stopped: the stack is idle again, not just the record.
    time.sleep(0.5)
    assert cpu_used(sessions, 2.0) < 0.5
    with pytest.raises(FityardError) as raised:
        client.cancel(job)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert client.job(job.id).state == "CANCELLED"
