"""Compare-and-set updates of job records in the KV bucket.

The scheduler's request handlers and its event consumer (and any other
scheduler replica) may update the same record concurrently; each update
re-reads and retries on a revision conflict, so no write is lost.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common.bus import record_key
from services.common.records import encode, get_record
from services.internal.v1 import records_pb2


async def update_job(
    jobs: KeyValue, tenant: str, job_id: str, mutate: Callable[[records_pb2.JobRecord], bool]
) -> records_pb2.JobRecord | None:
    """Apply `mutate` (returns False for "no change") to the record; return
    the record as stored, or None if there is no such job."""
    while True:
        found = await get_record(jobs, tenant, job_id, records_pb2.JobRecord)
        if found is None:
            return None
        job, revision = found
        if not mutate(job):
            return job
        try:
            await jobs.update(record_key(tenant, job_id), encode(job), last=revision)
            return job
        except KeyWrongLastSequenceError:
            continue
