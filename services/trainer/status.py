"""A trainer's own status in the fityard_trainers KV bucket, for operators
(`fityard top`): idle, waiting (holding a job until a core is free) or busy,
with which job and how many cores.

Read from what the trainer already tracks (the job it holds, the cores it
leases), every half second in-process; written to NATS only when it changed
or every TRAINER_STATUS_REFRESH_SECONDS, so an idle trainer costs one small
write every few seconds. The bucket's TTL (bus.TRAINER_STATUS_TTL_SECONDS)
removes a trainer that died without a word; one that stops cleanly deletes
its entry. A failed write is logged, never fatal: the status is for people,
jobs do not depend on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from nats.js.kv import KeyValue

from services.common import bus
from services.common.records import now
from services.internal.v1 import records_pb2

log = logging.getLogger(__name__)

LOOK_SECONDS = 0.5


class StatusReporter:
    def __init__(self, trainers: KeyValue, trainer, ctx):
        self.trainers = trainers
        self.trainer = trainer  # services/trainer/runner.py: Trainer
        self.ctx = ctx  # TrainerContext
        self.status = records_pb2.TrainerStatus(
            trainer_id=ctx.trainer_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            threads=ctx.threads,
            start_time=now(),
            state="idle",
        )
        self.status.state_time.CopyFrom(self.status.start_time)
        self._failing = False

    def look(self) -> bool:
        """Update the status from the trainer; True if it changed."""
        held = self.trainer.current_job
        cores = self.ctx.cores.held
        # holding a job not running yet: it waits for a core (services/trainer/cores.py)
        state = "idle" if held is None else "busy" if self.trainer.running else "waiting"
        tenant, job_id = held or ("", "")
        changed = (state, tenant, job_id, cores) != (
            self.status.state,
            self.status.tenant,
            self.status.job_id,
            self.status.cores,
        )
        if changed:
            if state != self.status.state or job_id != self.status.job_id:
                self.status.state_time.CopyFrom(now())
            self.status.state, self.status.tenant = state, tenant
            self.status.job_id, self.status.cores = job_id, cores
        return changed

    async def run(self, stop: asyncio.Event) -> None:
        """Report until `stop` is set, then delete the entry."""
        written = 0.0
        while not stop.is_set():
            if self.look() or time.monotonic() - written >= bus.TRAINER_STATUS_REFRESH_SECONDS:
                if await self._write():
                    written = time.monotonic()
            try:
                await asyncio.wait_for(stop.wait(), LOOK_SECONDS)
            except asyncio.TimeoutError:
                pass
        try:
            await self.trainers.delete(self.ctx.trainer_id)
        except Exception as exc:  # noqa: BLE001 - the entry then expires with the TTL
            log.info("could not remove this trainer's status (%s); it expires by itself", exc)

    async def _write(self) -> bool:
        self.status.update_time.CopyFrom(now())
        try:
            await self.trainers.put(self.ctx.trainer_id, self.status.SerializeToString())
        except Exception as exc:  # noqa: BLE001 - for operators only: never stops a trainer
            if not self._failing:
                log.warning("could not write this trainer's status: %s", exc)
            self._failing = True
            return False
        self._failing = False
        return True
