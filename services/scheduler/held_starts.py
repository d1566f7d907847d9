"""Starts of small jobs, held back for moments before they are folded.

A small job is over within milliseconds of its start, and its trainer
reports both: folded one by one, that is two record writes, two updates
pushed to every gateway and two messages to each watcher, all while the
fit runs on the same cores. So a numbered start (a first delivery's: it
needs no answer) of a small-lane job is held for up to HOLD_SECONDS: if the
job's end comes meanwhile the two are folded together, one write, and a
watcher sees QUEUED then SUCCEEDED; else the start is folded when its time
is up, at most HOLD_SECONDS late. A claim (a redelivery's start, attempt
0) is never held: its trainer waits for the answer.

Held events are not acked: a scheduler that dies holding them has them
redelivered to the next, and a stopping one folds them first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nats.aio.msg import Msg

from services.internal.v1 import bus_pb2

HOLD_SECONDS = 0.05

Item = tuple[Msg, bus_pb2.TrainerEvent]
JobKey = tuple[str, str]  # (tenant, job id)


class HeldStarts:
    def __init__(self, hold_seconds: float = HOLD_SECONDS):
        self.hold_seconds = hold_seconds
        self._held: dict[JobKey, tuple[float, list[Item]]] = {}

    def wait(self, longest: float) -> float:
        """How long the next fetch may wait: until the first held start is due."""
        if not self._held:
            return longest
        due = min(deadline for deadline, _ in self._held.values())
        return max(min(longest, due - time.monotonic()), 0.001)

    def take(
        self,
        by_job: dict[JobKey, list[Item]],
        small: Callable[[JobKey], bool],
        everything: bool = False,
    ) -> None:
        """Make `by_job` (a fetch's events by job) what is to be folded now:
        held events go back before their job's new ones (stream order) when
        it has new ones or their time is up (all of them with `everything`),
        and jobs whose only events are numbered starts of small jobs, held
        for the first time, are taken out to be held."""
        now = time.monotonic()
        released = set()
        for key in list(self._held):
            deadline, items = self._held[key]
            if key in by_job or everything or deadline <= now:
                del self._held[key]
                by_job[key] = items + by_job.get(key, [])
                released.add(key)
        if everything:
            return
        for key, items in list(by_job.items()):
            if key in released or not small(key):
                continue
            if all(_numbered_start(event) for _, event in items):
                self._held[key] = (now + self.hold_seconds, by_job.pop(key))


def _numbered_start(event: bus_pb2.TrainerEvent) -> bool:
    return event.WhichOneof("kind") == "started" and event.attempt > 0
