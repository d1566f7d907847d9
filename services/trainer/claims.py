"""A redelivered job's claim: the trainer asks the scheduler for the next
attempt number and waits for its answer before running anything.

Only the scheduler can tell whether the attempt before this delivery was
lost (its trainer died: the record still says RUNNING) or ended cleanly
(handed back, its worker's death reported), because only it has folded
every event before this claim, in stream order. So the claim is an event
like any other (AttemptStarted with attempt 0 and the message's delivery),
and the answer is the record: it shows this delivery when the claim was
accepted (then `attempts` is the number), or the job ended (too many lost
attempts, or cancelled), or a newer delivery (this one is stale). The wait
is as long as the scheduler takes to fold, no fixed delay; a first
delivery never waits (scheduler/attempts.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.js.kv import KeyValue

from services.common.jobs import TERMINAL_STATES, state_name
from services.common.records import get_record
from services.common.retry import TRANSIENT
from services.internal.v1 import records_pb2

log = logging.getLogger(__name__)

# How often the record is read while a claim waits (doubling to the most).
FIRST_LOOK_SECONDS = 0.005
MOST_LOOK_SECONDS = 0.1
# A trainer told to stop waits this much longer for an answer, then hands
# the message back unanswered (the scheduler is down: an accepted claim no
# one runs then counts as one lost attempt at the next claim).
STOPPING_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Verdict:
    """The scheduler's answer: run as attempt `number`, or not (`why`)."""

    number: int = 0
    why: str = ""  # "ended", "superseded" or "stopping" when number is 0


async def verdict(
    jobs: KeyValue,
    job: records_pb2.JobRecord,
    delivery: records_pb2.Delivery,
    heartbeat: Callable[[], Awaitable[None]],
    every: float,
    stop: asyncio.Event,
) -> Verdict:
    """Wait until the record answers the claim of `delivery`, heartbeating
    the message every `every` seconds meanwhile (the scheduler may be
    restarting); if `stop` is set, at most STOPPING_WAIT_SECONDS more."""
    look, beat = FIRST_LOOK_SECONDS, time.monotonic() + every
    stopping_since = None
    while True:
        answer = await _answer(jobs, job, delivery)
        if answer is not None:
            return answer
        if stop.is_set():
            stopping_since = stopping_since or time.monotonic()
            if time.monotonic() - stopping_since > STOPPING_WAIT_SECONDS:
                return Verdict(why="stopping")
        await asyncio.sleep(look)
        look = min(look * 2, MOST_LOOK_SECONDS)
        if time.monotonic() >= beat:
            beat = time.monotonic() + every
            await heartbeat()


async def _answer(
    jobs: KeyValue, job: records_pb2.JobRecord, delivery: records_pb2.Delivery
) -> Verdict | None:
    try:
        found = await get_record(jobs, job.tenant, job.id, records_pb2.JobRecord)
    except TRANSIENT:
        return None
    if found is None:
        return Verdict(why="ended")  # deleted meanwhile
    record = found[0]
    if record.state in TERMINAL_STATES:
        log.info("job %s has ended (%s): not running it", job.id, state_name(record.state))
        return Verdict(why="ended")
    mine = (delivery.stream_sequence, delivery.count)
    theirs = (record.delivery.stream_sequence, record.delivery.count)
    if theirs == mine:
        return Verdict(number=record.attempts)
    if theirs > mine:
        log.warning("job %s: a newer delivery runs it; dropping this one", job.id)
        return Verdict(why="superseded")
    return None
