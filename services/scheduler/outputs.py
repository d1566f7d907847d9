"""Keeping exactly one output per succeeded job.

Each attempt of a job writes its outputs under its own key
(services/common/keys.py), so attempts that overlap (a trainer that lost
its heartbeat still fitting while the job's redelivery runs elsewhere)
never overwrite each other. Once a job has ended, the scheduler removes
every output but the counting attempt's: all of them for a job that did not
succeed. Removal runs beside event folding, never in its way; a failure is
logged and leaves a stray object, not a wrong answer (downloads read the
counting attempt's key only).
"""

from __future__ import annotations

import asyncio
import logging

from fityard.v1 import jobs_pb2
from services.common.jobs import output_attempt
from services.common.keys import OUTPUT_KEYS, output_prefixes
from services.common.storage import ObjectStore
from services.internal.v1 import records_pb2

log = logging.getLogger(__name__)


class OutputJanitor:
    def __init__(self, store: ObjectStore):
        self.store = store
        self._tasks: set[asyncio.Task] = set()

    def job_ended(self, job: records_pb2.JobRecord) -> None:
        """Remove the outputs of the job's other attempts. A first attempt
        that succeeded has no others, a job that never started has none:
        nothing to list."""
        if job.attempts == 0 or (job.state == jobs_pb2.JOB_STATE_SUCCEEDED and job.attempts == 1):
            return
        keep = set()
        if job.state == jobs_pb2.JOB_STATE_SUCCEEDED:
            attempt = output_attempt(job)
            keep = {OUTPUT_KEYS[o](job.tenant, job.id, attempt) for o in job.outputs}
        self._spawn(self._remove_all_but, job.tenant, job.id, keep)

    def attempt_ignored(self, tenant: str, job_id: str, attempt: int, outputs) -> None:
        """An attempt that does not count reported outputs: remove them."""
        keys = [OUTPUT_KEYS[o](tenant, job_id, attempt) for o in outputs if o in OUTPUT_KEYS]
        if keys:
            self._spawn(self._remove, keys)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, fn, *args) -> None:
        task = asyncio.create_task(asyncio.to_thread(fn, *args))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not remove stale outputs: %s", task.exception())

    def _remove_all_but(self, tenant: str, job_id: str, keep: set[str]) -> None:
        stale = [
            key
            for prefix in output_prefixes(tenant, job_id)
            for key in self.store.list(prefix)
            if key not in keep
        ]
        self._remove(stale)

    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            self.store.delete(key)
            log.info("removed %s: not the output of the attempt that counts", key)
