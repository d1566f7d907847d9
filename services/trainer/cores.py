"""Core leases: how trainers on one machine share its cores.

Each core is a lock file in a directory all trainers of the machine share
(FITYARD_CORE_LEASES_DIR; `fityard up` sets it). A trainer holds at least one
core per running job, so trainers x threads never exceeds the cores. When
it takes a job and nothing else is waiting in the queue, it also takes every
free core, so a lone fit gets the whole machine; when jobs are queued, each
runs single-threaded beside the others (parallel single-threaded fits beat
one multi-threaded fit at a time for throughput).

flock(2) locks die with their process, so a crashed trainer frees its cores.
Without a leases directory (one trainer per container) a trainer simply uses
its whole thread budget.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

POLL_SECONDS = 0.01


class CoreLeases:
    def __init__(self, directory: str | Path, cores: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cores = cores
        self._held: list[int] = []  # file descriptors

    @property
    def held(self) -> int:
        return len(self._held)

    def _try(self, core: int) -> bool:
        fd = os.open(self.directory / f"core-{core}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
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

    def try_take_free(self, limit: int) -> int:
        taken = min(limit, self.cores - self.held)
        self.held += taken
        return taken

    async def take_one(self, while_waiting, every, give_up) -> bool:
        self.held = 1
        return True

    def release_extras(self) -> None:
        self.held = min(self.held, 1)

    def release_all(self) -> None:
        self.held = 0
