"""Cancelling jobs: queued ones never run, running ones stop, and the trainer
goes on serving everyone else."""
from __future__ import annotations

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
        # Two trainers: occupy both with long fits, so a third job stays queued.
        running = [_long_fit(client, train.id) for _ in range(2)]
        for job in running:
            _wait_for_state(job, "RUNNING")
        queued = _long_fit(client, train.id)
        time.sleep(0.5)
        assert queued.refresh().state == "QUEUED"

        cancelled = client.cancel(queued)
        assert cancelled.state == "CANCELLED"
        started = time.monotonic()
        for job in running:
            assert client.cancel(job).state == "CANCELLED"
        # The trainers kill their work at once and take new jobs.
        quick = client.fit(train.id, max_iter=5)
        quick.wait(timeout=60)
        assert quick.state == "SUCCEEDED"
        assert time.monotonic() - started < 30
        # Cancelled jobs stay cancelled, the queued one never started.
        assert all(client.job(j.id).state == "CANCELLED" for j in [*running, queued])
        assert client.job(queued.id).attempts == 0

        with pytest.raises(FityardError) as ended:
            client.cancel(quick)
        assert ended.value.code.name == "FAILED_PRECONDITION"
        assert "already ended" in str(ended.value)
