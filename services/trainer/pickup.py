"""How an idle trainer finds its next job: at once, on every lane, without
polling.

A trainer pulls from one JetStream consumer per lane, small lane first. A
pull that waits can be on one lane only, and one left waiting while the
trainer runs a job of another lane would take a job it cannot start (an
abandoned pull request stays on the server until it expires). So an idle
trainer keeps no pull waiting: it listens to the lanes' subjects as a plain
NATS subscriber (every publish of a job is seen, no message is taken) and,
when a job is published on one of its lanes, looks there first. A job given
back (a nak) or redelivered after an ack deadline is published by nobody:
it is found by the look every IDLE_LOOK_SECONDS.

Measured (bench, the seed fit end to end): a lone default-lane job started
23-125 ms after it was queued when the trainer waited on the small lane
for 250 ms at a time; it now starts within a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services.common import bus
from services.common.config import SMALL_LANE

log = logging.getLogger(__name__)

# A look at a lane: a pull answered at once when a job waits, after this
# long when none does.
QUICK_LOOK_SECONDS = 0.01
# An idle trainer looks at every lane at least this often (jobs given back
# or redelivered, which no publish announces). A stop waits for it.
IDLE_LOOK_SECONDS = 0.25
# Small jobs are taken this many at a time when that many wait (a burst):
# one pull for them all instead of one each. Few enough that another
# trainer finds work in a burst's tail; held ones are heartbeated.
SMALL_JOBS_PER_FETCH = 8


class JobNotices:
    """Which of the trainer's lanes (in priority order) had a job published
    since it last looked."""

    def __init__(self, lanes: list[str]):
        self.lanes = lanes
        self._published: set[str] = set()
        self._any = asyncio.Event()
        self._subscriptions = []

    async def listen(self, nc: NATS) -> None:
        for lane in self.lanes:
            self._subscriptions.append(
                await nc.subscribe(bus.lane_subjects(lane), cb=self._noticer(lane))
            )

    def _noticer(self, lane: str):
        async def notice(msg: Msg) -> None:
            self._published.add(lane)
            self._any.set()

        return notice

    def lanes_to_look_at(self) -> list[str]:
        """Lanes with a job published since the last call first, then the
        others, each group in priority order; forgets what it noticed."""
        published = [lane for lane in self.lanes if lane in self._published]
        self._published.clear()
        self._any.clear()
        return published + [lane for lane in self.lanes if lane not in published]

    async def wait(self, timeout: float) -> None:
        """Until a job is published on a lane, or `timeout` seconds."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._any.wait(), timeout)

    async def close(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):  # the connection may be gone
                await subscription.unsubscribe()
        self._subscriptions.clear()


async def next_job(pulls: dict[str, object], notices: JobNotices) -> list[Msg]:
    """The next job messages, from the first lane that has any (the lanes
    just published on first); [] if none has, after waiting at most
    IDLE_LOOK_SECONDS for a publish. `pulls`: each lane's pull subscription."""
    for lane in notices.lanes_to_look_at():
        msgs = await _fetch(pulls[lane], _batch(lane), QUICK_LOOK_SECONDS)
        if msgs:
            return msgs
    await notices.wait(IDLE_LOOK_SECONDS)
    return []


def _batch(lane: str) -> int:
    return SMALL_JOBS_PER_FETCH if lane == SMALL_LANE else 1


async def _fetch(sub, batch: int, timeout: float) -> list[Msg]:
    try:
        return await sub.fetch(batch, timeout=timeout)
    except asyncio.TimeoutError:
        return []
