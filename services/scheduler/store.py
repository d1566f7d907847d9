"""Compare-and-set updates of job records in the KV bucket.

The scheduler's request handlers and its event consumer (and any other
scheduler replica) may update the same record concurrently; each update
retries on a revision conflict, so no write is lost.

An update starts from the record as this scheduler last wrote it
(`remember`, `update_job`), not from a fresh read: the scheduler is the
records' only writer, so that copy is almost always current, and a job's
folds and cancels then cost one KV round trip, not two. When it is not
current (another replica wrote, a record was deleted) the compare-and-set
fails and the record is read again: the copy saves reads, never decides.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common.bus import record_key
from services.common.jobs import TERMINAL_STATES
from services.common.records import encode, get_record
from services.internal.v1 import records_pb2

# How many jobs' records are kept per bucket (the least recently used go
# first; a job's goes when it ends): about 1 KiB each.
KNOWN_RECORDS = 20_000

_known: weakref.WeakKeyDictionary[KeyValue, OrderedDict] = weakref.WeakKeyDictionary()


def remember(jobs: KeyValue, job: records_pb2.JobRecord, revision: int) -> None:
    """Keep `job` as written at `revision` (a submit's create, an update)."""
    known = _known.setdefault(jobs, OrderedDict())
    key = record_key(job.tenant, job.id)
    if job.state in TERMINAL_STATES:  # its updates are rare from now on
        known.pop(key, None)
        return
    known[key] = (job.SerializeToString(), revision, job.lane)
    known.move_to_end(key)
    while len(known) > KNOWN_RECORDS:
        known.popitem(last=False)


def _copy(jobs: KeyValue, key: str) -> tuple[records_pb2.JobRecord, int] | None:
    found = _known.get(jobs, {}).get(key)
    if found is None:
        return None
    return records_pb2.JobRecord.FromString(found[0]), found[1]


def known_lane(jobs: KeyValue, tenant: str, job_id: str) -> str:
    """The lane of the job as last written here; "" if it is not known."""
    found = _known.get(jobs, {}).get(record_key(tenant, job_id))
    return found[2] if found is not None else ""


def forget(jobs: KeyValue, key: str) -> None:
    _known.get(jobs, {}).pop(key, None)


async def update_job(
    jobs: KeyValue, tenant: str, job_id: str, mutate: Callable[[records_pb2.JobRecord], bool]
) -> records_pb2.JobRecord | None:
    """Apply `mutate` (returns False for "no change") to the record; return
    the record as stored, or None if there is no such job."""
    key = record_key(tenant, job_id)
    found = _copy(jobs, key)
    while True:
        if found is None:
            found = await get_record(jobs, tenant, job_id, records_pb2.JobRecord)
            if found is None:
                forget(jobs, key)
                return None
        job, revision = found
        if not mutate(job):
            return job
        try:
            revision = await jobs.update(key, encode(job), last=revision)
        except KeyWrongLastSequenceError:
            forget(jobs, key)
            found = None
            continue
        except BaseException:
            forget(jobs, key)  # written or not: read it next time
            raise
        remember(jobs, job, revision)
        return job
