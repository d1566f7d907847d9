"""Cancelling jobs: queued ones never run, running ones stop, and the trainer
goes on serving everyone else."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fityard import Client, FityardError
from services.embedded import EmbeddedStack
from tests.support.jobs import job_record, long_fit, wait_for_state
from tests.support.procs import cpu_used, stack_sessions

pytestmark = pytest.mark.stack


def test_cancel_running_and_queued_jobs_then_keep_serving(local_stack, seed_files):
    with Client(local_stack.address) as client:
        train = client.upload(seed_files["train"])
        # A lone long fit takes every core; the next two wait, QUEUED: one held
        # by the other trainer until a core frees up, one still in the stream.
        running = long_fit(client, train.id)
        wait_for_state(running, "RUNNING")
        waiting = [long_fit(client, train.id) for _ in range(2)]
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
        # Cancelled jobs stay cancelled, and none of them runs: with the
        # quick fit done, the stack is idle (a cancelled job started anyway
        # would keep a core busy for minutes).
        assert all(client.job(j.id).state == "CANCELLED" for j in [running, *waiting])
        assert cpu_used(stack_sessions(local_stack), 3.0) < 0.5
        # Nothing cancelled still runs: a new lone fit gets every core.
        lone = long_fit(client, train.id)
        wait_for_state(lone, "RUNNING", timeout=15)
        assert job_record(local_stack.nats_url, lone.id).cores == len(os.sched_getaffinity(0))
        client.cancel(lone)

        with pytest.raises(FityardError) as ended:
            client.cancel(quick)
        assert ended.value.code.name == "FAILED_PRECONDITION"
        assert "already ended" in str(ended.value)


def test_cancel_all_queued_stops_exactly_the_waiting_jobs(tmp_path, seed_files):
    """`cancel_all(state="QUEUED")` (and `fityard cancel --all --state
    QUEUED`): every waiting job is cancelled, the running one keeps running,
    and jobs already done are left alone. A stack of its own: no other
    test's jobs to cancel."""
    with (
        EmbeddedStack(tmp_path / "stack", trainers=1) as stack,
        Client(stack.address) as client,
    ):
        train = client.upload(seed_files["train"])
        done = client.fit(train.id, max_iter=5).wait(timeout=60)
        running = wait_for_state(long_fit(client, train.id), "RUNNING")
        waiting = [long_fit(client, train.id) for _ in range(3)]
        time.sleep(0.5)
        assert [job.refresh().state for job in waiting] == ["QUEUED"] * 3
        cancelled = client.cancel_all(state="QUEUED")
        assert {job.id for job in cancelled} == {job.id for job in waiting}
        assert all(job.state == "CANCELLED" for job in cancelled)
        assert client.job(running.id).state == "RUNNING"
        assert client.job(done.id).state == "SUCCEEDED"
        # the CLI's spelling, on what is left: the running one
        result = subprocess.run(
            [sys.executable, "-m", "fityard", "--address", stack.address, "cancel", "--all"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [running.id, "CANCELLED"]
        assert "cancelled 1 job(s)" in result.stderr
        assert client.cancel_all() == []
        with pytest.raises(ValueError, match="QUEUED, RUNNING"):
            client.cancel_all(state="SUCCEEDED")
