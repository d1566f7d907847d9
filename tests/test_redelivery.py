"""Jobs and the trainers that hold them: a long job is never taken from a
live trainer, and a trainer that leaves (SIGTERM) or dies (SIGKILL) hands
its job to another, which finishes it.

Each test gets its own stack with a short ack deadline (2 s) so that
"longer than the deadline" takes seconds, and trainers that do not share
cores, so a redelivered job would start at once beside the first run
instead of waiting for its cores (tests/support/faults.py). Unsupervised:
a trainer that is stopped stays stopped.
"""

from __future__ import annotations

import signal
import time

import pytest

from fityard import Client
from services.embedded import EmbeddedStack
from tests.support.faults import (
    fault_env,
    fit_of_seconds,
    frame,
    leftover_scratch,
    runs,
    settle,
    stored_outputs,
    trainers,
    wait_for_run,
)
from tests.support.procs import session_members

pytestmark = pytest.mark.stack

ACK_WAIT = 2.0
WAIT_SECONDS = 120
# Deadlines no hand-back waits for: a job handed back on shutdown must start
# again well before the ack deadline and the scheduler's sweep for jobs
# whose message is missing, so the test tells a hand-back (nak) from a job
# left to the deadline or acked (and found by the sweep).
SLOW_RECOVERY = {"FITYARD_ACK_WAIT_SECONDS": "60", "FITYARD_RECONCILE_SECONDS": "60"}
HAND_BACK_SECONDS = 10.0


@pytest.fixture
def deadlines():
    """The stack's deadline settings; a test parametrizes it to change them."""
    return {"FITYARD_ACK_WAIT_SECONDS": str(ACK_WAIT)}


@pytest.fixture
def stack(tmp_path, deadlines):
    running = EmbeddedStack(tmp_path, trainers=2, env=fault_env(tmp_path, **deadlines)).start()
    yield running
    running.stop()


@pytest.fixture
def client(stack):
    with Client(stack.address) as c:
        yield c


def test_a_job_longer_than_the_ack_deadline_is_neither_redelivered_nor_run_twice(stack, client):
    job = client.fit(client.upload(frame()).id, max_iter=100_000, early_stopping="false")
    wait_for_run(stack, job, 1)
    time.sleep(4 * ACK_WAIT)  # with no heartbeat it would be redelivered twice by now
    assert job.refresh().state == "RUNNING"
    assert (job.attempts, len(runs(stack, job.id))) == (1, 1)
    client.cancel(job)


@pytest.mark.parametrize("deadlines", [SLOW_RECOVERY], ids=["slow-recovery"])
def test_a_trainer_stopped_with_sigterm_hands_its_job_to_another(stack, client):
    job = fit_of_seconds(client)
    first = wait_for_run(stack, job, 1)
    stack.process(first).send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    stack.process(first).wait(30)  # it leaves promptly, not after the fit

    # The other trainer takes it at once, not at the ack deadline.
    wait_for_run(stack, job, 2, timeout=HAND_BACK_SECONDS)
    assert time.monotonic() - stopped < HAND_BACK_SECONDS
    assert job.wait(timeout=60).state == "SUCCEEDED"
    assert runs(stack, job.id) == [
        first,
        *(set(trainers(stack)) - {first}),
    ]  # the other one finished it
    # Handing back on shutdown is no lost attempt.
    assert (job.attempts, job.lost_attempts) == (2, 0)
    assert len(stored_outputs(stack, job)) == 1


def test_a_sigkilled_trainers_job_runs_again_elsewhere_within_the_deadline(stack, client):
    job = fit_of_seconds(client)
    first = wait_for_run(stack, job, 1)
    victim = stack.process(first)
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.wait(10)

    wait_for_run(stack, job, 2, timeout=ACK_WAIT + 30)
    assert time.monotonic() - killed < ACK_WAIT + 5  # noticed by the ack deadline, not later
    # The dead trainer's worker process went with it: no orphan fit.
    settle(lambda: not session_members({victim.pid}), what="the dead trainer's worker gone")

    assert job.wait(timeout=WAIT_SECONDS).state == "SUCCEEDED"
    assert runs(stack, job.id) == [first, *(set(trainers(stack)) - {first})]
    assert (job.attempts, job.lost_attempts) == (2, 1)
    assert len(stored_outputs(stack, job)) == 1
    settle(
        lambda: not leftover_scratch(stack.data_dir / "scratch"),
        what="the dead worker's scratch swept",
    )
