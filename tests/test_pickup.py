"""How an idle trainer finds its next job (services/trainer/pickup.py), on a
real nats-server with fityard's streams and lane consumers: a job published
on any lane is taken when it is published, not at the next periodic look;
with jobs on both lanes the small lane goes first; a job no publish
announces (given back with a nak) is still found by the periodic look."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from services.common import bus
from services.common.config import DEFAULT_LANE, LANES, SMALL_LANE, Config
from services.trainer import pickup
from services.trainer.pickup import JobNotices, next_job

pytestmark = pytest.mark.stack


async def _trainer_side(url: str):
    """A connection with fityard's topology, a trainer's pulls and notices."""
    nc = await bus.connect(url, "test-pickup", attempts=100)
    js = nc.jetstream()
    await bus.ensure_topology(js, replace(Config.from_env(), nats_url=url))
    pulls = {
        lane: await js.pull_subscribe_bind(bus.LANE_CONSUMERS[lane], stream=bus.JOBS_STREAM)
        for lane in LANES
    }
    notices = JobNotices(list(LANES))
    await notices.listen(nc)
    await nc.flush()
    return nc, js, pulls, notices


async def _publish(js, lane: str, job_id: str) -> None:
    await js.publish(bus.job_subject(lane, "fit", "default", job_id), job_id.encode())


def _job_ids(msgs) -> list[str]:
    return [msg.data.decode() for msg in msgs]


def test_an_idle_trainer_takes_a_job_of_any_lane_when_it_is_published(nats_url, monkeypatch):
    # A periodic look far away: only the publish can explain a quick pickup.
    monkeypatch.setattr(pickup, "IDLE_LOOK_SECONDS", 30.0)

    async def scenario():
        nc, js, pulls, notices = await _trainer_side(nats_url)
        try:
            for lane in (DEFAULT_LANE, SMALL_LANE):
                waiting = asyncio.create_task(_until_a_job(pulls, notices))
                await asyncio.sleep(0.2)  # it looked, found nothing, waits
                assert not waiting.done()
                await _publish(js, lane, f"job_{lane}")
                msgs = await asyncio.wait_for(waiting, 10)  # not at the look 30 s away
                assert _job_ids(msgs) == [f"job_{lane}"]
                await msgs[0].ack()
        finally:
            await nats_close(nc, notices)

    asyncio.run(scenario())


async def _until_a_job(pulls, notices):
    while not (msgs := await next_job(pulls, notices)):
        pass
    return msgs


def test_with_jobs_on_both_lanes_the_small_lane_goes_first(nats_url):
    async def scenario():
        nc, js, pulls, notices = await _trainer_side(nats_url)
        try:
            await _publish(js, DEFAULT_LANE, "job_long")
            await _publish(js, SMALL_LANE, "job_toy")
            await nc.flush()
            await asyncio.sleep(0.2)  # both noticed while "busy"
            first = await _until_a_job(pulls, notices)
            assert _job_ids(first) == ["job_toy"]
            await first[0].ack()
            second = await _until_a_job(pulls, notices)
            assert _job_ids(second) == ["job_long"]
            await second[0].ack()
        finally:
            await nats_close(nc, notices)

    asyncio.run(scenario())


def test_a_job_given_back_is_found_by_the_periodic_look(nats_url, monkeypatch):
    monkeypatch.setattr(pickup, "IDLE_LOOK_SECONDS", 0.3)

    async def scenario():
        nc, js, pulls, notices = await _trainer_side(nats_url)
        try:
            await _publish(js, DEFAULT_LANE, "job_back")
            taken = await _until_a_job(pulls, notices)
            assert await next_job(pulls, notices) == []  # idle now, nothing announced
            await taken[0].nak()  # handed back: redelivered, published by nobody
            again = await asyncio.wait_for(_until_a_job(pulls, notices), 10)
            assert _job_ids(again) == ["job_back"]
            assert again[0].metadata.num_delivered == 2
            await again[0].ack()
        finally:
            await nats_close(nc, notices)

    asyncio.run(scenario())


async def nats_close(nc, notices: JobNotices) -> None:
    await notices.close()
    await nc.close()
