"""Progress reports of a running job, passed on at most once per interval.

A fit reports each boosting round; every report becomes a JetStream event
the scheduler folds into the job's record (a read and a compare-and-set)
and every watcher is sent. For a job of a few milliseconds that traffic
cost more CPU than the fit (bench: "CPU per job outside the fit"), and a
watcher cannot read ten updates a second anyway. So a report waits until
`interval` seconds have passed since the last one went out (the job's
RUNNING report counts as one), and only the newest waiting report is sent:
the latest stage is always shown, at most `interval` late. Nothing is sent
once the attempt ends (the job ended, was cancelled or handed back): its
own report says more, and a RUNNING report after a hand-back would put the
record back to RUNNING.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Send = Callable[[float, str], Awaitable[None]]


class ProgressThrottle:
    def __init__(self, send: Send, interval: float):
        self._send = send
        self._interval = interval
        self._last = time.monotonic()  # the RUNNING report just sent
        self._waiting: tuple[float, str] | None = None
        self._timer: asyncio.Task | None = None
        self._closed = False

    async def offer(self, fraction: float, message: str) -> None:
        """A new report: sent now if the interval has passed, else later."""
        if self._closed:
            return
        self._waiting = (fraction, message)
        if self._timer is not None:
            return  # the timer sends the newest
        wait = self._last + self._interval - time.monotonic()
        if wait <= 0:
            await self._flush()
        else:
            self._timer = asyncio.create_task(self._later(wait))

    async def _later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None
        try:
            await self._flush()
        except Exception as exc:  # noqa: BLE001 - a missed progress report is not worth failing a job
            log.warning("could not report progress (%s)", exc)

    async def _flush(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._last = time.monotonic()
            await self._send(*waiting)

    def close(self) -> None:
        """The attempt ended: drop what waits and take no more (its own
        report follows)."""
        self._closed = True
        self._waiting = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
