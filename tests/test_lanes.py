"""Priorities by size: a job's work (rows x columns x rounds) puts it on the
small or the default lane; trainers take from the small lane first and run
a small job at once, single-threaded, even when a long fit leases every
core. So a toy fit never waits behind long ones. Timings are asserted
loosely (this VM drifts); bench/ measures them."""

from __future__ import annotations

import time

import pytest

from fityard import Client
from services.embedded import EmbeddedStack
from tests.support.faults import settle
from tests.support.jobs import held_in_lane, job_record, long_fit, wait_for_state

pytestmark = pytest.mark.stack

TOY = {"max_iter": 5}
TOY_SECONDS = 20  # a toy fit takes well under a second alone; generous for a busy VM


def test_a_toy_fit_runs_at_once_while_a_long_fit_holds_every_core(tmp_path, seed_files):
    with EmbeddedStack(tmp_path / "stack", trainers=2) as stack, Client(stack.address) as client:
        train = client.upload(seed_files["train"])
        long = wait_for_state(long_fit(client, train.id), "RUNNING")
        long_cores = job_record(stack.nats_url, long.id).cores
        assert long_cores >= 1 and job_record(stack.nats_url, long.id).lane == "default"
        started = time.monotonic()
        toy = client.fit(train.id, **TOY).wait(timeout=TOY_SECONDS)
        took = time.monotonic() - started
        assert toy.state == "SUCCEEDED" and took < TOY_SECONDS
        record = job_record(stack.nats_url, toy.id)
        assert record.lane == "small" and record.cores == 1
        # the long fit kept its cores and runs on
        assert client.job(long.id).state == "RUNNING"
        assert job_record(stack.nats_url, long.id).cores == long_cores
        client.cancel(long)


def test_a_toy_fit_starts_before_long_fits_queued_ahead_of_it(tmp_path, seed_files):
    """Every regular trainer busy or holding a long fit, four more long fits
    queued: the toy fit, submitted last, starts first (`fityard up` runs one
    trainer for the small lane only) and is done while they wait."""
    with (
        EmbeddedStack(tmp_path / "stack", trainers=2, express_trainer=True) as stack,
        Client(stack.address) as client,
    ):
        train = client.upload(seed_files["train"])
        running = wait_for_state(long_fit(client, train.id), "RUNNING")
        queued = [long_fit(client, train.id) for _ in range(4)]
        # the other trainer takes one and waits for a core
        settle(lambda: held_in_lane(stack.nats_url, "default") == 2, 30, "a second long fit held")
        toy = client.fit(train.id, **TOY).wait(timeout=TOY_SECONDS)
        assert toy.state == "SUCCEEDED"
        assert job_record(stack.nats_url, toy.id).trainer_id == "trainer-small"
        for job in queued:
            job.refresh()
            assert job.state == "QUEUED" and job.start_time is None, job
        for job in [*queued, running]:
            client.cancel(job)


def test_a_trainer_serves_only_its_lanes(tmp_path, seed_files):
    """FITYARD_TRAINER_LANES: a trainer of the small lane alone leaves long
    jobs queued for others (how a GPU stage would get trainers of its own)."""
    env = {"FITYARD_TRAINER_LANES": "small"}
    with (
        EmbeddedStack(tmp_path / "stack", trainers=1, env=env) as stack,
        Client(stack.address) as client,
    ):
        train = client.upload(seed_files["train"])
        long = long_fit(client, train.id)
        toy = client.fit(train.id, **TOY).wait(timeout=TOY_SECONDS)
        assert toy.state == "SUCCEEDED"
        time.sleep(1.0)
        assert client.job(long.id).state == "QUEUED"
        client.cancel(long)
