"""Jobs with a known shape for tests: fits that run for minutes, waiting for
a state, and keeping every core busy so the next job waits QUEUED."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from fityard import Client, Job


def long_fit(client: Client, dataset_id: str) -> Job:
    """Thousands of boosting rounds without early stopping: minutes of work,
    so it is still running when the test acts on it."""
    return client.fit(dataset_id, max_iter=100_000, early_stopping="false", learning_rate=0.001)


def wait_for_state(job: Job, state: str, timeout: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.refresh().state == state:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job.id} stayed {job.state}, expected {state}")


@contextmanager
def cores_taken(client: Client, dataset_id: str) -> Iterator[Job]:
    """A lone long fit holds every core (core leases) while the block runs,
    so jobs submitted inside it wait QUEUED; it is cancelled on the way out,
    which lets them run."""
    blocker = wait_for_state(long_fit(client, dataset_id), "RUNNING")
    try:
        yield blocker
    finally:
        client.cancel(blocker)
