"""Cancelling jobs: queued ones never run, running ones stop, and the trainer
goes on serving everyone else."""
from __future__ import annotations

import os
import time

import pytest

from fityard import Client, FityardError


def _long_fit(client: Client, dataset_id: str):
    # Thousands of boosting rounds without early stopping: minutes of work.
    return client.fit(dataset_id, max_iter=100_000, early_stopping="false", learning_rate=0.001)


def _wait_for_state(job, state: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.refresh().state == state:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{job.id} stayed {job.state}, expected {state}")


def test_cancel_running_and_queued_jobs_then_keep_serving(local_stack, seed_files):
    with Client(local_stack.address) as client:
        train = client.upload(seed_files["train"])
        # A lone long fit takes every core; the next two wait, QUEUED: one held
        # by the other trainer until a core frees up, one still in the stream.
        running = _long_fit(client, train.id)
        _wait_for_state(running, "RUNNING")
        waiting = [_long_fit(client, train.id) for _ in range(2)]
        time.sleep(0.5)
        assert [job.refresh().state for job in waiting] == ["QUEUED", "QUEUED"]

        started = time.monotonic()
        for job in [*waiting, running]:
            assert client.cancel(job).state == "CANCELLED"
        # The running fit is killed at once and the trainers take new work.
        quick = client.fit(train.id, max_iter=5)
        quick.wait(timeout=60)
        assert quick.state == "SUCCEEDED"
        assert time.monotonic() - started < 30
        # Cancelled jobs stay cancelled; the waiting ones never started.
        assert all(client.job(j.id).state == "CANCELLED" for j in [running, *waiting])
        assert [client.job(j.id).attempts for j in waiting] == [0, 0]
        # Nothing cancelled still runs: a new lone fit gets every core.
        lone = _long_fit(client, train.id)
        _wait_for_state(lone, "RUNNING", timeout=15)
        assert lone.cores == len(os.sched_getaffinity(0))
        client.cancel(lone)

        with pytest.raises(FityardError) as ended:
            client.cancel(quick)
        assert ended.value.code.name == "FAILED_PRECONDITION"
        assert "already ended" in str(ended.value)
