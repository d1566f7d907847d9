"""Submitting a job to the scheduler (services/scheduler/service.py
SubmitJob), without a stack: the record it writes, and idempotency keys
(request_id) that return the job they first created. NATS is dictionaries
behind the calls the scheduler makes (KV create/get, a JetStream publish)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import grpc
import pytest

from fityard.v1 import datasets_pb2, jobs_pb2
from services.common import bus
from services.common.config import Config
from services.common.records import id_time, new_record_id
from services.internal.v1 import bus_pb2, records_pb2, scheduler_pb2
from services.scheduler.live_jobs import LiveJobs
from services.scheduler.service import SchedulerService
from tests.support.fake_kv import TENANT, FakeBucket


class FakeJetStream:
    def __init__(self):
        self.published: list[tuple[str, bytes, dict]] = []

    async def publish(self, subject: str, payload: bytes, headers: dict) -> None:
        self.published.append((subject, payload, headers))


class Aborted(Exception):
    pass


class FakeContext:
    async def abort_with_status(self, status: grpc.Status) -> None:
        raise Aborted(status)


def _scheduler() -> tuple[SchedulerService, SimpleNamespace]:
    ctx = SimpleNamespace(
        config=Config(),
        nc=None,
        js=FakeJetStream(),
        jobs=FakeBucket(),
        datasets=FakeBucket(),
        requests=FakeBucket(),
        fits=FakeBucket(),
        live=LiveJobs(),
        digests=FakeBucket(),
        store=None,
    )
    dataset = records_pb2.DatasetRecord(
        id="ds_train",
        tenant=TENANT,
        rows=100,
        columns=[datasets_pb2.Column(name="col_0"), datasets_pb2.Column(name="y")],
    )
    ctx.datasets.values[bus.record_key(TENANT, dataset.id)] = dataset.SerializeToString()
    return SchedulerService(ctx), ctx


def _fit(request_id: str = "", max_iter: int = 5) -> scheduler_pb2.SubmitJobRequest:
    return scheduler_pb2.SubmitJobRequest(
        tenant=TENANT,
        kind=jobs_pb2.JOB_KIND_FIT,
        dataset_id="ds_train",
        params=jobs_pb2.FitParams(max_iter=max_iter),
        request_id=request_id,
    )


def _submit(service: SchedulerService, request) -> records_pb2.JobRecord:
    return asyncio.run(service.SubmitJob(request, FakeContext())).job


def _stored(ctx, job_id: str) -> records_pb2.JobRecord:
    return records_pb2.JobRecord.FromString(ctx.jobs.values[bus.record_key(TENANT, job_id)])


def test_a_submit_records_a_queued_job_and_queues_it_once():
    service, ctx = _scheduler()
    job = _submit(service, _fit("r1"))
    assert _stored(ctx, job.id) == job
    assert (job.state, job.tenant, job.lane, job.request_id) == (
        jobs_pb2.JOB_STATE_QUEUED,
        TENANT,
        "small",  # 100 rows x 2 columns x 5 rounds: a toy job
        "r1",
    )
    assert job.create_time == id_time(job.id)  # key order is list order
    ((subject, payload, headers),) = ctx.js.published
    assert subject == f"jobs.small.fit.{TENANT}.{job.id}"
    assert bus_pb2.JobTask.FromString(payload).job == job
    assert headers[bus.HDR_MSG_ID] == job.id


def test_a_repeated_request_id_returns_the_first_job_and_queues_nothing_more():
    service, ctx = _scheduler()
    first = _submit(service, _fit("r1"))
    again = _submit(service, _fit("r1"))
    assert again == first and len(ctx.js.published) == 1
    other = _submit(service, _fit("r2"))
    assert other.id != first.id and len(ctx.js.published) == 2


def test_submits_without_a_request_id_are_each_a_new_job():
    service, ctx = _scheduler()
    assert _submit(service, _fit()).id != _submit(service, _fit()).id
    assert ctx.requests.values == {}


def test_a_request_id_reused_for_another_request_is_refused_naming_it():
    service, _ = _scheduler()
    _submit(service, _fit("r1", max_iter=5))
    with pytest.raises(Aborted) as aborted:
        _submit(service, _fit("r1", max_iter=6))
    status = aborted.value.args[0]
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details.startswith("request_id: 'r1' was already used for a different request")


def test_a_request_whose_first_submit_died_before_recording_its_job_gets_that_job():
    # The first submit claimed the request id for its job id, then its
    # scheduler died before writing the record: the retry records the job
    # under that id (and its time) and queues it.
    service, ctx = _scheduler()
    claimed, created = new_record_id("job")
    ctx.requests.values[bus.request_key(TENANT, "r1")] = claimed.encode()
    job = _submit(service, _fit("r1"))
    assert (job.id, job.create_time) == (claimed, created)
    assert _stored(ctx, claimed) == job and len(ctx.js.published) == 1


def test_jobs_over_the_active_quota_are_refused_and_an_ended_one_makes_room():
    service, ctx = _scheduler()
    service.config = Config(quota_active_jobs=2)
    first, _ = _submit(service, _fit()), _submit(service, _fit())
    with pytest.raises(Aborted) as aborted:
        _submit(service, _fit())
    status = aborted.value.args[0]
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "jobs queued or running would be 3" in status.details
    assert len(ctx.js.published) == 2  # the refused one is neither recorded nor queued
    ctx.live.ended(first)  # what a cancel or a trainer's end does
    _submit(service, _fit())


def test_live_jobs_rebuilt_from_records_keep_jobs_changed_while_reading():
    live = LiveJobs()

    def job(job_id: str, state=jobs_pb2.JOB_STATE_QUEUED, tenant: str = "t", seconds: int = 0):
        return records_pb2.JobRecord(
            id=job_id, tenant=tenant, lane="default", state=state, create_time={"seconds": seconds}
        )

    live.submitted(job("job_old"))  # ended since; the records no longer say it is live
    read_since = time.monotonic()
    live.submitted(job("job_new"))  # submitted while the records were being read
    live.reset(
        [
            job("job_b", seconds=2),
            job("job_a", seconds=1),
            job("job_r", jobs_pb2.JOB_STATE_RUNNING),
            job("job_c", tenant="u", seconds=3),
            job("job_done", jobs_pb2.JOB_STATE_SUCCEEDED),
        ],
        read_since,
    )
    assert (live.count("t"), live.count("u"), live.count("v")) == (4, 1, 0)
    queue = [job_id for (_, job_id), _ in live.queues()["default"]]
    assert queue == ["job_a", "job_b", "job_c", "job_new"]  # running jobs are in no queue
    live.handed_back(job("job_r"))  # redelivered first
    assert [job_id for (_, job_id), _ in live.queues()["default"]][0] == "job_r"
    live.ended(job("job_a"))
    assert live.count("t") == 3
