"""Deleting datasets and jobs on a real stack: the store is freed, what a
live job needs is refused naming who needs it, and the scheduler forgets
what it knew of a deleted dataset."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from fityard import Client, FailedPrecondition, NotFound
from services.embedded import EmbeddedStack
from tests.support.jobs import long_fit

pytestmark = pytest.mark.stack

WAIT = 180
QUICK = {"max_iter": 5}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(tmp_path_factory.mktemp("delete"), trainers=1) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack):
    with Client(stack.address) as connected:
        yield connected


def _objects(stack, kind: str, owner: str) -> list:
    """Stored files of a dataset (kind "datasets") or of a job's outputs."""
    return [p for p in (stack.data_dir / "objects").rglob(f"{kind}/*") if owner in str(p)]


def _frame(seed: float) -> pd.DataFrame:
    return pd.DataFrame({"col_0": [seed, 1.0, 2.0, 3.0] * 25, "y": [0, 1] * 50})


def test_a_deleted_dataset_is_gone_from_the_store_the_lists_and_admission(stack, client):
    dataset = client.upload(_frame(0.5), name="to-delete.parquet")
    client.fit(dataset, **QUICK).wait(timeout=WAIT)  # the scheduler has seen it
    assert _objects(stack, "datasets", dataset.id)
    client.delete_dataset(dataset)
    assert _objects(stack, "datasets", dataset.id) == []
    with pytest.raises(NotFound):
        client.dataset(dataset)
    assert dataset.id not in {d.id for d in client.datasets()}
    with pytest.raises(NotFound) as refused:
        client.fit(dataset, **QUICK)
    assert refused.value.resource == ("fityard.v1.Dataset", f"datasets/{dataset.id}")
    # The same bytes again are a new dataset (the content index forgot them).
    again = client.upload(_frame(0.5), name="to-delete.parquet")
    assert again.id != dataset.id and _objects(stack, "datasets", again.id)
    with pytest.raises(NotFound):
        client.delete_dataset(dataset)


def test_a_dataset_a_live_job_uses_is_kept_until_the_job_ends(client, seed_files):
    dataset = client.upload(seed_files["train"])
    job = long_fit(client, dataset.id)
    with pytest.raises(FailedPrecondition) as refused:
        client.delete_dataset(dataset)
    assert f"jobs/{job.id}" in refused.value.message
    assert refused.value.precondition_violations[0][:2] == (
        "DATASET_IN_USE",
        f"datasets/{dataset.id}",
    )
    job.cancel()
    client.delete_dataset(dataset)
    with pytest.raises(NotFound):
        client.dataset(dataset)
    assert client.job(job).state == "CANCELLED"  # jobs that used it keep their records


def test_deleting_jobs_frees_their_outputs(stack, client, seed_files):
    train = client.upload(seed_files["train"])
    test = client.upload(seed_files["test"])
    fit = client.fit(train, **QUICK).wait(timeout=WAIT)
    predict = client.predict(fit, test).wait(timeout=WAIT)
    assert _objects(stack, "models", fit.id) and _objects(stack, "predictions", predict.id)
    client.delete_job(predict)
    assert _objects(stack, "predictions", predict.id) == []
    with pytest.raises(NotFound):
        client.job(predict)
    client.delete_job(fit)
    assert _objects(stack, "models", fit.id) == []
    with pytest.raises(NotFound):
        client.predict(fit, test)


def test_a_job_not_ended_or_a_model_in_use_is_not_deleted(stack, client, seed_files):
    train = client.upload(seed_files["train"])
    running = long_fit(client, train.id)
    with pytest.raises(FailedPrecondition) as refused:
        client.delete_job(running)
    assert "cancel it first" in refused.value.message
    running.cancel()
    client.delete_job(running)

    trained = client.fit(train, random_state=7, **QUICK).wait(timeout=WAIT)
    cached = client.fit(train, random_state=7, **QUICK)
    assert cached.cached_from == trained.id
    with pytest.raises(FailedPrecondition) as refused:
        client.delete_job(trained)
    assert refused.value.precondition_violations[0][0] == "MODEL_IN_USE"
    assert f"jobs/{cached.id}" in refused.value.message
    client.delete_job(cached)  # a cached fit's model is the other's: it stays
    assert _objects(stack, "models", trained.id)
    client.delete_job(trained)
    assert _objects(stack, "models", trained.id) == []


def test_fityard_delete_takes_datasets_and_jobs_and_reports_each(stack, client):
    dataset = client.upload(_frame(9.0), name="cli.parquet")
    job = client.fit(dataset, **QUICK).wait(timeout=WAIT)
    env = {**os.environ, "FITYARD_ADDRESS": stack.address}

    def fityard(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "fityard", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = fityard("delete", job.id, dataset.id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"deleted {job.id}", f"deleted {dataset.id}"]
    again = fityard("delete", dataset.id)
    assert again.returncode == 1
    assert f"datasets/{dataset.id} not found" in again.stderr
