"""The scheduler folds trainer events a fetch at a time (services/scheduler/
events.py), on a real nats-server with fityard's streams and buckets: a job
whose start, progress and end arrive together is written once, not three
times; events of several jobs in one fetch each land on their own record in
order; nothing is acked before its record is written."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fityard.v1 import jobs_pb2
from services.common import bus
from services.common.config import Config
from services.common.jobs import OUTPUTS
from services.common.records import encode
from services.internal.v1 import bus_pb2, records_pb2
from services.scheduler.context import SchedulerContext
from services.scheduler.events import EventFolder
from services.scheduler.store import remember

pytestmark = pytest.mark.stack

TENANT = "default"


def _record(job_id: str) -> records_pb2.JobRecord:
    return records_pb2.JobRecord(
        id=job_id,
        tenant=TENANT,
        kind=jobs_pb2.JOB_KIND_FIT,
        state=jobs_pb2.JOB_STATE_QUEUED,
        lane="small",
    )


def _event(job_id: str, kind: str, body, second: int) -> bus_pb2.TrainerEvent:
    event = bus_pb2.TrainerEvent(
        job_id=job_id, tenant=TENANT, attempt=1, trainer_id="t1", time=Timestamp(seconds=second)
    )
    getattr(event, kind).CopyFrom(body)
    return event


def _whole_job(job_id: str) -> list[bus_pb2.TrainerEvent]:
    """What a trainer sends for a small job that succeeds at once."""
    delivery = records_pb2.Delivery(stream_sequence=1, count=1)
    return [
        _event(job_id, "started", bus_pb2.AttemptStarted(delivery=delivery, cores=1), 10),
        _event(job_id, "progress", bus_pb2.AttemptProgress(fraction=0.5, message="half"), 11),
        _event(
            job_id,
            "succeeded",
            bus_pb2.JobSucceeded(outputs=OUTPUTS[jobs_pb2.JOB_KIND_FIT], rows=200),
            12,
        ),
    ]


async def _connect(url: str, tmp_path) -> SchedulerContext:
    config = Config.from_env()
    config = replace(config, nats_url=url, storage=replace(config.storage, root=tmp_path / "store"))
    for _ in range(100):  # nats-server takes a moment to listen
        try:
            return await SchedulerContext.connect(config)
        except Exception:  # noqa: BLE001
            await asyncio.sleep(0.1)
    return await SchedulerContext.connect(config)


async def _fold_what_is_published(ctx: SchedulerContext, events) -> None:
    """Publish `events`, then run the scheduler's event loop until it has
    acked every one of them (the consumer has nothing left to give)."""
    for event in events:
        await ctx.js.publish(
            bus.event_subject(event.tenant, event.job_id), event.SerializeToString()
        )
    stop = asyncio.Event()
    folding = asyncio.create_task(EventFolder(ctx).run(stop))
    for _ in range(200):
        info = await ctx.js.consumer_info(bus.EVENTS_STREAM, bus.SCHEDULER_CONSUMER)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await folding
    assert info.num_pending == 0 and info.num_ack_pending == 0, "events were left unacked"


async def _bucket_writes(ctx: SchedulerContext) -> int:
    """How many writes the jobs bucket has had (its stream's last sequence)."""
    return (await ctx.js.stream_info(f"KV_{bus.JOBS_BUCKET}")).state.last_seq


def test_a_jobs_start_and_end_in_one_fetch_are_one_record_write(nats_url, tmp_path):
    async def scenario():
        ctx = await _connect(nats_url, tmp_path)
        try:
            await ctx.jobs.create(bus.record_key(TENANT, "job_a"), encode(_record("job_a")))
            created = await _bucket_writes(ctx)
            await _fold_what_is_published(ctx, _whole_job("job_a"))
            entry = await ctx.jobs.get(bus.record_key(TENANT, "job_a"))
            job = records_pb2.JobRecord.FromString(entry.value)
            assert job.state == jobs_pb2.JOB_STATE_SUCCEEDED
            assert (job.attempts, job.output_attempt, job.rows) == (1, 1, 200)
            assert job.start_time.seconds == 10 and job.end_time.seconds == 12
            assert await _bucket_writes(ctx) - created == 1
        finally:
            await ctx.close()

    asyncio.run(scenario())


def test_events_of_many_jobs_interleaved_land_on_their_own_records_in_order(nats_url, tmp_path):
    async def scenario():
        ctx = await _connect(nats_url, tmp_path)
        try:
            ids = [f"job_{i}" for i in range(20)]
            for job_id in ids:
                await ctx.jobs.create(bus.record_key(TENANT, job_id), encode(_record(job_id)))
            per_job = [_whole_job(job_id) for job_id in ids]
            # round robin: every job's start, then every job's progress, ...
            interleaved = [events[step] for step in range(3) for events in per_job]
            # and one job that is cancelled after its start: the end still wins
            await ctx.jobs.create(bus.record_key(TENANT, "job_c"), encode(_record("job_c")))
            interleaved += [
                _whole_job("job_c")[0],
                _event("job_c", "cancelled", bus_pb2.JobCancelled(), 13),
            ]
            await _fold_what_is_published(ctx, interleaved)
            for job_id in ids:
                entry = await ctx.jobs.get(bus.record_key(TENANT, job_id))
                job = records_pb2.JobRecord.FromString(entry.value)
                assert job.state == jobs_pb2.JOB_STATE_SUCCEEDED, job_id
                assert job.end_time.seconds == 12
            entry = await ctx.jobs.get(bus.record_key(TENANT, "job_c"))
            assert records_pb2.JobRecord.FromString(entry.value).state == (
                jobs_pb2.JOB_STATE_CANCELLED
            )
        finally:
            await ctx.close()

    asyncio.run(scenario())


def test_an_event_for_a_job_recorded_late_is_kept_until_its_record_exists(nats_url, tmp_path):
    """A quick trainer can report before the record is visible: the event is
    not dropped but folded once the record is there."""

    async def scenario():
        ctx = await _connect(nats_url, tmp_path)
        try:
            stop = asyncio.Event()
            folding = asyncio.create_task(EventFolder(ctx).run(stop))
            for event in _whole_job("job_late"):
                await ctx.js.publish(
                    bus.event_subject(TENANT, "job_late"), event.SerializeToString()
                )
            await asyncio.sleep(0.5)
            await ctx.jobs.create(bus.record_key(TENANT, "job_late"), encode(_record("job_late")))
            for _ in range(100):
                entry = await ctx.jobs.get(bus.record_key(TENANT, "job_late"))
                job = records_pb2.JobRecord.FromString(entry.value)
                if job.state == jobs_pb2.JOB_STATE_SUCCEEDED:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await folding
            assert job.state == jobs_pb2.JOB_STATE_SUCCEEDED
        finally:
            await ctx.close()

    asyncio.run(scenario())


def test_a_record_changed_by_another_writer_is_read_again_not_overwritten(nats_url, tmp_path):
    """The scheduler folds from its own copy of a record; when another
    replica wrote it meanwhile (here: cancelled it), the compare-and-set
    fails and the fold starts again from the stored record."""

    async def scenario():
        ctx = await _connect(nats_url, tmp_path)
        try:
            key = bus.record_key(TENANT, "job_r")
            revision = await ctx.jobs.create(key, encode(_record("job_r")))
            remember(ctx.jobs, _record("job_r"), revision)
            cancelled = _record("job_r")
            cancelled.state = jobs_pb2.JOB_STATE_CANCELLED
            await ctx.jobs.put(key, encode(cancelled))  # behind this scheduler's back
            await _fold_what_is_published(ctx, _whole_job("job_r"))
            job = records_pb2.JobRecord.FromString((await ctx.jobs.get(key)).value)
            assert job.state == jobs_pb2.JOB_STATE_CANCELLED
            assert job.attempts == 0  # the start was not applied on the stale copy
        finally:
            await ctx.close()

    asyncio.run(scenario())


def test_a_small_jobs_start_waits_for_its_end_and_a_lone_start_still_lands(nats_url, tmp_path):
    """A small job's start and its end 20 ms later (two fetches) are one
    record write; a start with no end yet is written within moments."""

    async def scenario():
        ctx = await _connect(nats_url, tmp_path)
        stop = asyncio.Event()
        folding = asyncio.create_task(EventFolder(ctx).run(stop))
        try:
            for job_id in ("job_quick", "job_long"):
                key = bus.record_key(TENANT, job_id)
                remember(
                    ctx.jobs, _record(job_id), await ctx.jobs.create(key, encode(_record(job_id)))
                )
            created = await _bucket_writes(ctx)
            start, _, end = _whole_job("job_quick")
            for event in (start, end):
                subject = bus.event_subject(TENANT, "job_quick")
                await ctx.js.publish(subject, event.SerializeToString())
                await asyncio.sleep(0.02)
            lone = _whole_job("job_long")[0]
            await ctx.js.publish(bus.event_subject(TENANT, "job_long"), lone.SerializeToString())
            states = {}
            for _ in range(100):
                for job_id in ("job_quick", "job_long"):
                    entry = await ctx.jobs.get(bus.record_key(TENANT, job_id))
                    states[job_id] = records_pb2.JobRecord.FromString(entry.value).state
                if states == {
                    "job_quick": jobs_pb2.JOB_STATE_SUCCEEDED,
                    "job_long": jobs_pb2.JOB_STATE_RUNNING,
                }:
                    break
                await asyncio.sleep(0.02)
            assert states["job_quick"] == jobs_pb2.JOB_STATE_SUCCEEDED
            assert states["job_long"] == jobs_pb2.JOB_STATE_RUNNING
            assert await _bucket_writes(ctx) - created == 2  # one for each job
        finally:
            stop.set()
            await folding
            await ctx.close()

    asyncio.run(scenario())
