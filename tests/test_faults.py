"""Faults on a running stack: every accepted job still reaches the terminal
state a user expects, no job has two outputs, nothing is left running or on
disk, and the stack keeps serving.

Each test starts its own supervised stack (what `fityard up` runs: a dead
child is restarted) with settings that make faults quick to see
(tests/support/faults.py: a 2 s ack deadline, sweeps every second).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import grpc
import nats
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fityard import Client, FityardError, Job, JobFailed
from fityard.v1 import datasets_pb2, datasets_pb2_grpc
from services.common import bus
from services.embedded import EmbeddedStack
from tests.support.faults import (
    fault_env,
    fit_of_seconds,
    frame,
    kill_worker,
    leftover_scratch,
    runs,
    settle,
    stored_outputs,
    wait_for_run,
    worker_pid,
)
from tests.support.procs import session_members

pytestmark = pytest.mark.stack

WAIT_SECONDS = 120


def _start(tmp_path, trainers: int = 2, **env) -> EmbeddedStack:
    return EmbeddedStack(
        tmp_path, trainers=trainers, env=fault_env(tmp_path, **env), supervise=True
    ).start()


@pytest.fixture
def stack(tmp_path):
    running = _start(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def client(stack):
    with Client(stack.address) as c:
        yield c


def _assert_clean(stack: EmbeddedStack, *succeeded: Job) -> None:
    """Exactly one output per succeeded job, no scratch of dead processes."""
    for job in succeeded:
        assert len(stored_outputs(stack, job)) == 1, stored_outputs(stack, job)
    settle(
        lambda: not leftover_scratch(stack.data_dir / "scratch"),
        what="dead processes' scratch swept",
    )


def _still_serving(client: Client) -> None:
    quick = client.fit(client.upload(frame(500, 3), name="quick.parquet"), max_iter=5)
    assert quick.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED"


def test_a_sigkilled_worker_costs_one_attempt_and_the_job_succeeds_once(stack, client):
    job = fit_of_seconds(client)
    trainer = wait_for_run(stack, job, 1)
    killed = kill_worker(stack, trainer)
    wait_for_run(stack, job, 2, timeout=30)  # retried at once, not after a deadline

    assert job.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED"
    assert (job.attempts, job.lost_attempts) == (2, 1)
    assert not session_members({killed})
    _assert_clean(stack, job)


def test_a_job_that_kills_its_worker_every_time_fails_saying_so(stack, client):
    job = fit_of_seconds(client)
    for attempt in (1, 2, 3):
        kill_worker(stack, wait_for_run(stack, job, attempt))
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=WAIT_SECONDS)
    assert "stopped 3 time(s)" in str(failed.value) and "FITYARD_MAX_ATTEMPTS=3" in str(
        failed.value
    )
    assert job.lost_attempts == 3
    _still_serving(client)
    _assert_clean(stack)
    assert stored_outputs(stack, job) == []


def test_a_job_that_kills_its_trainer_every_time_fails_saying_so(stack, client):
    job = fit_of_seconds(client)
    for attempt in (1, 2, 3):
        trainer = wait_for_run(stack, job, attempt)
        stack.process(trainer).send_signal(signal.SIGKILL)
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=WAIT_SECONDS)
    assert "stopped 3 time(s)" in str(failed.value) and "its trainer died" in str(failed.value)
    assert len(runs(stack, job.id)) == 3  # the fourth delivery was not run
    _still_serving(client)  # the trainers were restarted
    _assert_clean(stack)


def test_a_rolling_restart_of_every_trainer_during_a_long_fit_costs_no_attempt(stack, client):
    job = fit_of_seconds(client)
    for attempt in (1, 2, 3):
        trainer = wait_for_run(stack, job, attempt)
        old = stack.process(trainer)
        old.send_signal(signal.SIGTERM)  # a rolling deploy: one at a time
        old.wait(30)
        settle(
            lambda trainer=trainer, old=old: (
                stack.process(trainer).pid != old.pid and stack.process(trainer).poll() is None
            ),
            what="restart",
        )
    assert job.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED"
    assert (job.attempts, job.lost_attempts) == (4, 0)
    _assert_clean(stack, job)


def test_the_scheduler_killed_while_it_folds_events_loses_no_job(stack, client):
    dataset = client.upload(frame(5_000, 10), name="small.parquet").id
    jobs = [client.fit(dataset, max_iter=100) for _ in range(6)]
    stack.process("scheduler").send_signal(signal.SIGKILL)
    # Submitted while the scheduler is down: the gateway waits for it.
    jobs += [client.fit(dataset, max_iter=100) for _ in range(2)]
    for job in jobs:
        assert job.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED", job.error
    assert stack.restarts("scheduler") == 1
    _assert_clean(stack, *jobs)


def test_nats_killed_with_jobs_queued_and_running_then_restarted(stack, client):
    dataset = client.upload(frame(), name="long.parquet").id
    running = fit_of_seconds(client, dataset)
    wait_for_run(stack, running, 1)
    queued = [client.fit(dataset, max_iter=50) for _ in range(3)]
    stack.process("nats").send_signal(signal.SIGKILL)
    settle(
        lambda: stack.restarts("nats") == 1 and stack.process("nats").poll() is None,
        what="nats restarted",
    )
    for job in [running, *queued]:
        assert job.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED", job.error
    _still_serving(client)
    _assert_clean(stack, running, *queued)


def test_the_gateway_killed_during_an_upload_and_a_watch(stack, client):
    job = fit_of_seconds(client)
    watched: list = []
    watcher = threading.Thread(target=lambda: watched.append(Job.wait(job, timeout=WAIT_SECONDS)))
    watcher.start()
    failed_upload: list = []

    def slow_requests():
        yield datasets_pb2.UploadRequest(header=datasets_pb2.UploadHeader(name="slow.parquet"))
        yield datasets_pb2.UploadRequest(chunk=b"PAR1" + bytes(1024 * 1024))
        while True:
            time.sleep(0.2)
            yield datasets_pb2.UploadRequest(chunk=bytes(1024 * 1024))

    def upload():
        with grpc.insecure_channel(stack.address) as channel:
            try:
                datasets_pb2_grpc.DatasetServiceStub(channel).Upload(slow_requests(), timeout=60)
            except grpc.RpcError as exc:
                failed_upload.append(exc.code())

    part_dir = stack.data_dir / "objects" / ".tmp"
    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    settle(lambda: part_dir.exists() and any(part_dir.iterdir()), what="an upload part on disk")
    stack.process("gateway").send_signal(signal.SIGKILL)

    uploader.join(30)
    assert failed_upload == [grpc.StatusCode.UNAVAILABLE]
    watcher.join(WAIT_SECONDS)
    assert watched and watched[0].state == "SUCCEEDED"  # the watch reconnected
    # The killed gateway's part is swept by its successor.
    settle(lambda: not any(part_dir.iterdir()), what="the abandoned part swept")
    _still_serving(client)
    _assert_clean(stack, job)


def test_a_poison_dataset_fails_with_a_bounded_message_and_trainers_survive(
    stack, client, tmp_path
):
    # As many long column names as an upload may carry (the list of columns
    # alone is hundreds of KiB), all of them text a model cannot use: the
    # trainer's message names them, bounded.
    names = [f"{'x' * 1000}_{i}" for i in range(400)]
    path = tmp_path / "poison.parquet"
    table = pa.table({**{name: ["a", "b"] for name in names}, "y": [0, 1]})
    pq.write_table(table, path, store_schema=False)
    job = client.fit(client.upload(path))
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=WAIT_SECONDS)
    message = str(failed.value)
    assert "cannot use" in message and len(message.encode()) <= 4096
    assert stack.restarts("trainer-1") == stack.restarts("trainer-2") == 0
    # Without y it is refused at submission, the message as bounded.
    pq.write_table(pa.table({name: [0.0, 1.0] for name in names}), path, store_schema=False)
    with pytest.raises(FityardError) as refused:
        client.fit(client.upload(path))
    assert "no column 'y'" in refused.value.message
    assert len(refused.value.message.encode()) <= 4096
    # One name longer still is refused at upload, naming the limit.
    pq.write_table(pa.table({"x" * 2000: [0.0, 1.0], "y": [0, 1]}), path, store_schema=False)
    with pytest.raises(FityardError) as refused:
        client.upload(path)
    assert (
        refused.value.code.name == "INVALID_ARGUMENT" and "at most 1,024" in refused.value.message
    )
    _still_serving(client)


def test_a_cancel_sent_while_no_trainer_listens_still_stops_the_job(tmp_path):
    # One trainer, heartbeats every second, a deadline long enough that the
    # job is not redelivered while its trainer is paused.
    env = {"FITYARD_ACK_WAIT_SECONDS": "30", "FITYARD_HEARTBEAT_SECONDS": "1"}
    stack = _start(tmp_path, trainers=1, **env)
    try:
        with Client(stack.address) as client:
            job = client.fit(
                client.upload(frame(), name="long.parquet"),
                max_iter=100_000,
                early_stopping="false",
            )
            trainer = wait_for_run(stack, job, 1)
            paused = stack.process(trainer)
            worker = worker_pid(stack, trainer)
            paused.send_signal(signal.SIGSTOP)  # its NATS connection goes quiet...
            try:
                stack.process("nats").send_signal(signal.SIGKILL)  # ...and then away
                settle(
                    lambda: stack.process("nats").poll() is None and stack.restarts("nats") == 1,
                    what="nats back",
                )
                assert client.cancel(job).state == "CANCELLED"  # the notice reaches no trainer
            finally:
                paused.send_signal(signal.SIGCONT)
            # The trainer reconnects, reads the record at a heartbeat and
            # stops the fit: its worker process is killed (and replaced).
            settle(lambda: worker_pid(stack, trainer) != worker, timeout=60, what="the fit stopped")
            assert client.job(job.id).state == "CANCELLED"
    finally:
        stack.stop()


def test_streams_and_buckets_deleted_under_a_running_stack_are_recreated(stack, client):
    async def delete_topology() -> None:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            for stream in (bus.JOBS_STREAM, bus.EVENTS_STREAM):
                await js.delete_stream(stream)
            await js.delete_key_value(bus.JOBS_BUCKET)
        finally:
            await nc.close()

    asyncio.run(delete_topology())
    # The records went with the bucket; new work goes through again.
    _still_serving(client)
