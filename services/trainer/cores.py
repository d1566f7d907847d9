"""Core leases: how trainers on one machine share its cores.

Each core is a lock file in a directory all trainers of the machine share
(FITYARD_CORE_LEASES_DIR; `fityard up` sets it). A trainer holds at least one
core per running job, so trainers x threads never exceeds the cores. When
it takes a job and nothing else is waiting in the queue, it also takes every
free core, so a lone fit gets the whole machine; when jobs are queued, each
runs single-threaded beside the others (parallel single-threaded fits beat
one multi-threaded fit at a time for throughput).

A held core's lock file says which lane's job holds it: a small job that
finds no core free waits for one while only small jobs hold them (they end
within moments; running beside them would only slow every one of them),
and runs at once beside a default-lane job (which may hold its cores for
hours).

flock(2) locks die with their process, so a crashed trainer frees its cores.
Without a leases directory (one trainer per container) a trainer simply uses
its whole thread budget.

`take_cores` is the policy: which cores a job is given, and how long it
waits for them.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.common.config import SMALL_LANE

POLL_SECONDS = 0.01
# The longest a small job waits for a core that small jobs hold.
SMALL_JOB_CORE_WAIT_SECONDS = 5.0


async def take_cores(
    cores: CoreLeases | AllCores,
    lane: str,
    *,
    waiting: int,
    max_threads: int,
    heartbeat: Callable[[], Awaitable[None]],
    every: float,
    give_up: Callable[[], bool],
) -> int:
    """Take cores for a job of `lane`; return how many it runs on (its
    threads), 0 if `give_up()` came true first (the job stays QUEUED while
    it waits). `waiting`: jobs queued behind it when it was delivered;
    `heartbeat` is called every `every` seconds of waiting."""
    cores.lane = lane
    if lane == SMALL_LANE:
        # A small job takes a free core; with none free it waits while only
        # small jobs hold them (one ends within moments), at most
        # SMALL_JOB_CORE_WAIT_SECONDS, and otherwise runs single-threaded
        # beside the jobs holding them (seconds of oversubscription, rather
        # than waiting hours behind a long fit that holds them).
        if not cores.try_take_free(1) and cores.all_held_for(SMALL_LANE):
            give_up_at = time.monotonic() + SMALL_JOB_CORE_WAIT_SECONDS
            await cores.take_one(
                heartbeat,
                every,
                give_up=lambda: (
                    give_up()
                    or time.monotonic() >= give_up_at
                    or not cores.all_held_for(SMALL_LANE)
                ),
            )
        return 0 if give_up() else 1
    if not await cores.take_one(heartbeat, every, give_up=give_up):
        return 0
    # A lone job gets every free core; jobs queued behind it mean they run
    # side by side, one core each (from the message's own metadata: no
    # extra request).
    return 1 + (cores.try_take_free(max_threads - 1) if waiting == 0 else 0)


class CoreLeases:
    def __init__(self, directory: str | Path, cores: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cores = cores
        self._held: list[int] = []  # file descriptors
        self.lane = ""  # of the job the cores are taken for: written in the lock files

    @property
    def held(self) -> int:
        return len(self._held)

    def _path(self, core: int) -> Path:
        return self.directory / f"core-{core}.lock"

    def _try(self, core: int) -> bool:
        fd = os.open(self._path(core), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.lane.encode(), 0)
        self._held.append(fd)
        return True

    def try_take_free(self, limit: int) -> int:
        """Take up to `limit` more free cores without waiting; return how many."""
        taken = 0
        for core in range(self.cores):
            if taken >= limit:
                break
            taken += self._try(core)
        return taken

    def all_held_for(self, lane: str) -> bool:
        """Whether every core is held for jobs of `lane` (as their lock files
        say; a core taken a moment ago may still show its last holder's)."""
        for core in range(self.cores):
            try:
                if self._path(core).read_text() != lane:
                    return False
            except OSError:
                return False
        return True

    async def take_one(
        self,
        while_waiting: Callable[[], Awaitable[None]],
        every: float,
        give_up: Callable[[], bool],
    ) -> bool:
        """Wait until one core is free and take it (True), calling
        `while_waiting` every `every` seconds (to tell JetStream the job is
        still wanted). False, without a core, once `give_up()` is true."""
        waited = 0.0
        while not self.try_take_free(1):
            if give_up():
                return False
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
            if waited >= every:
                waited = 0.0
                await while_waiting()
        return True

    def release_extras(self) -> None:
        """Keep one core, give back the rest."""
        while len(self._held) > 1:
            os.close(self._held.pop())  # closing the descriptor drops the flock

    def release_all(self) -> None:
        self.release_extras()
        if self._held:
            os.close(self._held.pop())


class AllCores:
    """No leases directory: the trainer owns its whole budget."""

    def __init__(self, cores: int):
        self.cores = cores
        self.held = 0
        self.lane = ""

    def try_take_free(self, limit: int) -> int:
        taken = min(limit, self.cores - self.held)
        self.held += taken
        return taken

    def all_held_for(self, lane: str) -> bool:
        return False  # nobody else's jobs to wait for

    async def take_one(self, while_waiting, every, give_up) -> bool:
        self.held = 1
        return True

    def release_extras(self) -> None:
        self.held = min(self.held, 1)

    def release_all(self) -> None:
        self.held = 0
