"""Jobs are bounded and submission is durable: a run-time limit per job, a
limit on classes, idempotent submits, and a queued job whose message was
lost is queued again."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import nats
import numpy as np
import pandas as pd
import pytest

from fityard import Client, FityardError, JobFailed
from fityard.v1 import jobs_pb2, jobs_pb2_grpc
from services.common import job_queue
from services.embedded import EmbeddedStack
from tests.support.faults import fault_env, frame, wait_for_run
from tests.support.jobs import job_record

pytestmark = pytest.mark.stack

WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    env = fault_env(tmp, FITYARD_MAX_CLASSES="5", FITYARD_MAX_JOB_TIMEOUT_SECONDS="3600")
    running = EmbeddedStack(tmp, trainers=1, env=env).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(stack):
    with Client(stack.address) as c:
        yield c


@pytest.fixture(scope="module")
def dataset(client):
    return client.upload(frame(), name="train.parquet").id


def test_a_job_over_its_run_limit_fails_saying_so(stack, client, dataset):
    job = client.fit(dataset, max_iter=100_000, early_stopping="false", timeout_seconds=2)
    assert job.timeout_seconds == 2
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=WAIT_SECONDS)
    assert "timed out after 2 s" in str(failed.value) and "timeout_seconds" in str(failed.value)
    assert client.fit(dataset, max_iter=5).wait(timeout=WAIT_SECONDS).state == "SUCCEEDED"


def test_the_run_limit_is_derived_from_the_work_and_capped(client, dataset):
    small = client.fit(dataset, max_iter=5)
    endless = client.fit(dataset, max_iter=2**31 - 1, early_stopping="false")
    assert 0 < small.timeout_seconds < endless.timeout_seconds == 3600  # the server's cap
    client.cancel(endless)
    small.wait(timeout=WAIT_SECONDS)
    with pytest.raises(FityardError) as refused:
        client.fit(dataset, timeout_seconds=7200)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "timeout_seconds" in refused.value.message and "3600" in refused.value.message


def test_too_many_classes_is_a_user_error_named_before_fitting(client):
    labels = pd.DataFrame({"col_0": np.arange(60.0), "y": np.arange(60) % 12})
    job = client.fit(client.upload(labels, name="classes.parquet"))
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=WAIT_SECONDS)
    assert "12 distinct values" in str(failed.value) and "FITYARD_MAX_CLASSES" in str(failed.value)
    assert "internal error" not in str(failed.value)


def test_a_submit_repeated_with_its_request_id_returns_the_same_job(stack, dataset):
    request_id = uuid.uuid4().hex
    request = jobs_pb2.SubmitFitRequest(
        dataset_id=dataset, params=jobs_pb2.FitParams(max_iter=5), request_id=request_id
    )
    with grpc.insecure_channel(stack.address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        first = stub.SubmitFit(request).job
        again = stub.SubmitFit(request).job
        assert again.id == first.id
        listed = [j.id for j in stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=1000)).jobs]
        assert listed.count(first.id) == 1
        other = jobs_pb2.SubmitFitRequest(
            dataset_id=dataset, params=jobs_pb2.FitParams(max_iter=6), request_id=request_id
        )
        with pytest.raises(grpc.RpcError) as reused:
            stub.SubmitFit(other)
    assert (
        reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        and "request_id" in reused.value.details()
    )


def test_a_queued_job_whose_message_was_lost_is_queued_again(stack, client, dataset):
    blocker = client.fit(dataset, max_iter=100_000, early_stopping="false")
    wait_for_run(stack, blocker, 1)  # the only trainer is busy: the next job waits in the stream
    waiting = client.fit(dataset, max_iter=5)
    record = job_record(stack.nats_url, waiting.id)  # the record, to find its message

    async def lose_the_message() -> bool:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            await job_queue.remove(js, record)
            return await job_queue.is_queued(js, record)
        finally:
            await nc.close()

    assert asyncio.run(lose_the_message()) is False
    client.cancel(blocker)
    # Reconciliation (every second here) publishes it again.
    assert waiting.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED"
    assert "re-queued " + waiting.id in stack.log_tail("scheduler", 200)
