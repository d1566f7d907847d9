"""The jobs that are not done yet, as the scheduler sees them: each tenant's
count (what FITYARD_QUOTA_ACTIVE_JOBS limits) and each lane's queue in the
order trainers take it (what queue_board.py shows users).

Kept in memory: the scheduler, the records' one writer, sees every job
accepted, started, handed back and ended, so neither a submit's quota check
nor a queue position reads a record. Rebuilt from the records at every
reconciliation (at start, then every FITYARD_RECONCILE_SECONDS), keeping
what changed while the records were being read: a restarted scheduler is
right after its first pass, and a miscount cannot outlive the next one.

Order in a lane is submission order (JetStream delivers a lane's messages in
publish order); a job handed back goes to the front (it is redelivered
first). Jobs waiting for the same fit (fit_cache.py) count as live but are
in no lane.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from fityard.v1 import jobs_pb2
from services.common.config import DEFAULT_TENANT
from services.internal.v1 import records_pb2


@dataclass
class _Live:
    lane: str  # "" while it waits for another fit, or once it runs
    order: float  # its place in the lane: smaller first
    changed: float  # monotonic time of the last change


# Weight of the latest run in a lane's typical run time (an exponential
# moving average: recent jobs matter most, one odd job does not swing it).
RUN_WEIGHT = 0.3


class LiveJobs:
    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], _Live] = {}
        self._next = itertools.count(1)  # submitted: to the back
        self._front = itertools.count(-1, -1)  # handed back: to the front
        self._runs: dict[str, float] = {}  # lane -> typical run seconds

    # -- what the scheduler tells it ------------------------------------------
    def submitted(self, job: records_pb2.JobRecord) -> None:
        """Accepted; queued on its lane unless it waits for another fit."""
        lane = "" if job.cached_from else job.lane
        self._jobs[_key(job)] = _Live(lane, next(self._next), time.monotonic())

    def started(self, job: records_pb2.JobRecord) -> None:
        live = self._jobs.get(_key(job))
        if live is not None:
            live.lane, live.changed = "", time.monotonic()

    def handed_back(self, job: records_pb2.JobRecord) -> None:
        """QUEUED again after a start: first in its lane."""
        self._jobs[_key(job)] = _Live(job.lane, next(self._front), time.monotonic())

    def ended(self, job: records_pb2.JobRecord) -> None:
        """Terminal; a job that ran to success tells its lane's run time."""
        self._jobs.pop(_key(job), None)
        if job.state == jobs_pb2.JOB_STATE_SUCCEEDED and job.attempts and job.lane:
            run = _seconds(job.end_time) - _seconds(job.start_time)
            if run >= 0:
                before = self._runs.get(job.lane)
                self._runs[job.lane] = (
                    run if before is None else RUN_WEIGHT * run + (1 - RUN_WEIGHT) * before
                )

    def reset(self, records: list[records_pb2.JobRecord], read_since: float) -> None:
        """`records`, read from `read_since` (monotonic) on, are the truth,
        but for jobs that changed after that time."""
        fresh: dict[tuple[str, str], _Live] = {}
        live = [
            r for r in records if r.state in (jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_RUNNING)
        ]
        for record in sorted(live, key=lambda r: (r.create_time.seconds, r.create_time.nanos)):
            queued = record.state == jobs_pb2.JOB_STATE_QUEUED and not record.cached_from
            fresh[_key(record)] = _Live(record.lane if queued else "", next(self._next), read_since)
        # Jobs changed since: submitted ones go after those read (in their
        # order), handed-back ones stay in front.
        for key, job in sorted(self._jobs.items(), key=lambda item: item[1].order):
            if job.changed > read_since:
                if job.order > 0:
                    job.order = next(self._next)
                fresh[key] = job
        self._jobs = fresh

    # -- what it tells --------------------------------------------------------
    def count(self, tenant: str) -> int:
        return sum(1 for (t, _) in self._jobs if t == tenant)

    def typical_run(self, lane: str) -> float | None:
        """Seconds the lane's recent jobs ran (None before one has)."""
        return self._runs.get(lane)

    def queues(self, waited: float = 0.0) -> dict[str, list[tuple[tuple[str, str], bool]]]:
        """Each lane's queued jobs, first to be taken first: ((tenant, id),
        whether it has been queued `waited` seconds). Lanes where no job has
        waited that long are left out."""
        settled_before = time.monotonic() - waited
        lanes: dict[str, list[tuple[float, tuple[str, str], bool]]] = {}
        for key, job in self._jobs.items():
            if job.lane:
                lanes.setdefault(job.lane, []).append(
                    (job.order, key, job.changed <= settled_before)
                )
        return {
            lane: [(key, settled) for _, key, settled in sorted(jobs)]
            for lane, jobs in lanes.items()
            if any(settled for *_, settled in jobs)
        }


def _key(job: records_pb2.JobRecord) -> tuple[str, str]:
    return (job.tenant or DEFAULT_TENANT, job.id)


def _seconds(timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9
