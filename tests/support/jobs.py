"""Jobs with a known shape for tests: fits that run for minutes, waiting for
a state, keeping every core busy so the next job waits QUEUED, and the
server's own record of a job (what the public Job does not show)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import nats

from fityard import Client, Job
from services.common import bus
from services.common.config import DEFAULT_TENANT
from services.common.records import encode, get_record
from services.internal.v1 import records_pb2
from services.top import take_snapshot

# Thousands of boosting rounds without early stopping, each a small step
# (a fit stops by itself once its trees have nothing left to learn, which a
# few thousand rounds at the default rate reach in a second on a fast
# machine): minutes of work on any machine, so it is still running when
# the test acts on it, and the test ends it (cancel) when it is done with it.
LONG_FIT = {"max_iter": 100_000, "early_stopping": "false", "learning_rate": 0.001}


def long_fit(client: Client, dataset_id: str, **params) -> Job:
    """A fit that runs until it is cancelled, for all a test can tell (LONG_FIT)."""
    return client.fit(dataset_id, **{**LONG_FIT, **params})


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


def job_record(nats_url: str, job_id: str, tenant: str = DEFAULT_TENANT) -> records_pb2.JobRecord:
    """The job's record as the scheduler stores it (lane, tenant, trainer,
    cores, attempts), read from the stack's KV bucket."""

    async def read() -> records_pb2.JobRecord:
        nc = await nats.connect(nats_url)
        try:
            jobs = await nc.jetstream().key_value(bus.JOBS_BUCKET)
            found = await get_record(jobs, tenant, job_id, records_pb2.JobRecord)
        finally:
            await nc.close()
        assert found is not None, f"no record of {job_id}"
        return found[0]

    return asyncio.run(read())


def held_in_lane(nats_url: str, lane: str) -> int:
    """Jobs of `lane` that trainers hold (fetched, not yet acked: running,
    or waiting for a core), as JetStream counts them (`fityard top`'s view)."""

    async def read() -> int:
        nc = await nats.connect(nats_url)
        try:
            snapshot = await take_snapshot(nc.jetstream())
        finally:
            await nc.close()
        return sum(found.held for found in snapshot.lanes if found.name == lane)

    return asyncio.run(read())


def put_record(nats_url: str, record: records_pb2.JobRecord) -> None:
    """Write a job record straight into the stack's KV bucket: the state a
    crash can leave, for tests of the recovery from it."""

    async def write() -> None:
        nc = await nats.connect(nats_url)
        try:
            jobs = await nc.jetstream().key_value(bus.JOBS_BUCKET)
            await jobs.put(bus.record_key(record.tenant, record.id), encode(record))
        finally:
            await nc.close()

    asyncio.run(write())


def nats_refuses_without_a_token(port: int) -> bool:
    """True if the nats-server on `port` turns away a client with no token."""

    async def connect() -> bool:
        try:
            nc = await nats.connect(
                f"nats://127.0.0.1:{port}", max_reconnect_attempts=1, connect_timeout=3
            )
        except Exception:  # noqa: BLE001 - refused: what this checks
            return True
        await nc.close()
        return False

    return asyncio.run(connect())
