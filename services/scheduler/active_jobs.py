"""Each tenant's jobs that are QUEUED or RUNNING: what FITYARD_QUOTA_ACTIVE_JOBS
limits.

Counted in memory: the scheduler, the records' one writer, sees every job
accepted and every record turning terminal, so a submit is checked without
reading a single record. Rebuilt from the records at every reconciliation
(at start, then every FITYARD_RECONCILE_SECONDS), keeping the jobs added
while the records were being read: a restarted scheduler counts right
after its first pass, and a miscount cannot outlive the next one.
"""

from __future__ import annotations

import time
from collections import defaultdict


class ActiveJobs:
    def __init__(self) -> None:
        # tenant -> job id -> when it was added (monotonic)
        self._jobs: dict[str, dict[str, float]] = defaultdict(dict)

    def count(self, tenant: str) -> int:
        return len(self._jobs.get(tenant, ()))

    def add(self, tenant: str, job_id: str) -> None:
        self._jobs[tenant][job_id] = time.monotonic()

    def remove(self, tenant: str, job_id: str) -> None:
        self._jobs.get(tenant, {}).pop(job_id, None)

    def reset(self, active: dict[str, set[str]], read_since: float) -> None:
        """The records read from `read_since` (monotonic) on say these jobs
        are active; jobs added after that time stay (their records may have
        been written after they were read)."""
        fresh: dict[str, dict[str, float]] = defaultdict(dict)
        for tenant, ids in active.items():
            fresh[tenant].update(dict.fromkeys(ids, read_since))
        for tenant, jobs in self._jobs.items():
            for job_id, added in jobs.items():
                if added >= read_since:
                    fresh[tenant][job_id] = added
        self._jobs = fresh
