"""Priorities and places in line on a real stack with one trainer: a
priority given at submission decides the queue (refused, naming the field,
for a job too big to be interactive); queued jobs show their place and an
estimated wait, which move as the queue does and reach a watcher."""

from __future__ import annotations

import time

import pytest

from fityard import Client, InvalidArgument
from services.embedded import EmbeddedStack
from tests.support.jobs import long_fit

pytestmark = pytest.mark.stack

WAIT = 180


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(tmp_path_factory.mktemp("queue"), trainers=1) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack):
    with Client(stack.address) as connected:
        yield connected


def _until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_the_priority_asked_for_decides_the_queue(client, seed_files):
    train = client.upload(seed_files["train"])  # 3,000 rows x 21 columns
    assert client.fit(train, max_iter=5).priority == "INTERACTIVE"  # small: by size
    assert client.fit(train, max_iter=5, priority="batch").priority == "BATCH"
    assert client.fit(train, max_iter=1000).priority == "BATCH"
    assert client.fit(train, max_iter=1000, priority="interactive").priority == "INTERACTIVE"
    with pytest.raises(InvalidArgument) as refused:
        client.fit(train, max_iter=100_000, priority="interactive")
    assert refused.value.field_violations[0][0] == "priority"
    assert "PRIORITY_BATCH" in refused.value.message
    client.cancel_all()


def test_queued_jobs_show_their_place_and_wait_and_move_up(client, seed_files):
    train = client.upload(seed_files["train"])
    # One batch job runs to the end first: the queue's typical run is known.
    client.fit(train, max_iter=20, priority="batch").wait(timeout=WAIT)
    running = long_fit(client, train.id, priority="batch")
    _until(lambda: running.refresh().state == "RUNNING")
    queued = [long_fit(client, train.id, priority="batch") for _ in range(3)]

    places = _until(
        lambda: (
            [j.queue_position for j in (q.refresh() for q in queued)] == [1, 2, 3]
            and [q.refresh() for q in queued]
        )
    )
    assert places, [q.refresh().queue_position for q in queued]
    waits = [q.estimated_wait_seconds for q in places]
    assert 0 < waits[0] <= waits[1] <= waits[2]
    assert places[0].progress_message.startswith("queued: next in line, starting in about")
    assert places[2].progress_message.startswith("queued: 2 job(s) ahead in its queue")

    # The last one's watcher sees it move up when the running job goes.
    seen = []
    running.cancel()
    for job in queued[2].watch(timeout=60):
        seen.append(job.queue_position)
        if job.queue_position == 2:
            break
    assert seen[-1] == 2 and 3 in seen
    started = _until(lambda: queued[0].refresh().state == "RUNNING")
    assert started and queued[0].refresh().queue_position == 0
    client.cancel_all()
