"""Per-tenant quotas on real stacks configured with small limits: each one
refused with RESOURCE_EXHAUSTED naming the setting, the limit, the use and
how to free some (and the figures in an ErrorInfo); freeing some lets the
same request through; nothing of a refused upload is stored."""

from __future__ import annotations

import grpc
import numpy as np
import pandas as pd
import pytest

from fityard import Client, ResourceExhausted
from services.embedded import EmbeddedStack

pytestmark = pytest.mark.stack

MAX_ROWS = 1000
MAX_COLUMNS = 5


def _frame(rows: int, columns: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(rows, columns - 1)), columns=[f"col_{i}" for i in range(columns - 1)]
    )
    return frame.assign(y=rng.integers(0, 2, rows))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("quota-files")
    made = {
        "a": _frame(MAX_ROWS, MAX_COLUMNS, 1),
        "b": _frame(MAX_ROWS, MAX_COLUMNS, 2),
        "rows": _frame(MAX_ROWS + 1, 2, 3),
        "columns": _frame(10, MAX_COLUMNS + 1, 4),
    }
    for name, frame in made.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)
    return {name: directory / f"{name}.parquet" for name in made}


@pytest.fixture(scope="module")
def upload_stack(tmp_path_factory, files):
    """Room for dataset a or b, not both."""
    stored = files["a"].stat().st_size + files["b"].stat().st_size - 1
    env = {
        "FITYARD_QUOTA_STORED_BYTES": str(stored),
        "FITYARD_QUOTA_DATASET_ROWS": str(MAX_ROWS),
        "FITYARD_QUOTA_DATASET_COLUMNS": str(MAX_COLUMNS),
    }
    with EmbeddedStack(tmp_path_factory.mktemp("quota-uploads"), trainers=1, env=env) as running:
        yield running


def _stored_datasets(stack) -> list:
    return sorted((stack.data_dir / "objects").rglob("datasets/*.parquet"))


def test_stored_bytes_over_the_quota_are_refused_until_some_are_deleted(upload_stack, files):
    with Client(upload_stack.address) as client:
        first = client.upload(files["a"])
        stored = _stored_datasets(upload_stack)
        with pytest.raises(ResourceExhausted) as refused:
            client.upload(files["b"])
        assert _stored_datasets(upload_stack) == stored  # nothing of it kept
        error = refused.value
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "FITYARD_QUOTA_STORED_BYTES" in error.message
        assert "delete datasets you no longer need" in error.message
        assert error.retry_delay is None  # waiting alone does not help
        limit = files["a"].stat().st_size + files["b"].stat().st_size - 1
        assert error.quota == {
            "setting": "FITYARD_QUOTA_STORED_BYTES",
            "limit": str(limit),
            "used": str(limit + 1),
        }
        client.delete_dataset(first)
        assert client.upload(files["b"]).rows == MAX_ROWS


def test_a_dataset_over_the_row_or_column_quota_is_refused_and_not_stored(upload_stack, files):
    with Client(upload_stack.address) as client:
        stored = _stored_datasets(upload_stack)
        with pytest.raises(ResourceExhausted) as rows:
            client.upload(files["rows"])
        with pytest.raises(ResourceExhausted) as columns:
            client.upload(files["columns"])
    assert _stored_datasets(upload_stack) == stored
    assert rows.value.quota["setting"] == "FITYARD_QUOTA_DATASET_ROWS"
    assert f"rows in one dataset would be {MAX_ROWS + 1:,}" in rows.value.message
    assert columns.value.quota == {
        "setting": "FITYARD_QUOTA_DATASET_COLUMNS",
        "limit": str(MAX_COLUMNS),
        "used": str(MAX_COLUMNS + 1),
    }
    assert "drop the columns" in columns.value.message


def test_jobs_queued_or_running_over_the_quota_are_refused_until_one_ends(tmp_path_factory, files):
    env = {"FITYARD_QUOTA_ACTIVE_JOBS": "2"}
    long = {"max_iter": 3000, "early_stopping": False}
    with (
        EmbeddedStack(tmp_path_factory.mktemp("quota-jobs"), trainers=1, env=env) as stack,
        Client(stack.address) as client,
    ):
        dataset = client.upload(files["a"])
        running = [client.fit(dataset, **long) for _ in range(2)]
        with pytest.raises(ResourceExhausted) as refused:
            client.fit(dataset, **long)
        assert refused.value.quota == {
            "setting": "FITYARD_QUOTA_ACTIVE_JOBS",
            "limit": "2",
            "used": "3",
        }
        assert "fityard cancel --all --state QUEUED" in refused.value.message
        running[0].cancel()
        third = client.fit(dataset, **long)
        assert third.state == "QUEUED"
        client.cancel_all()
