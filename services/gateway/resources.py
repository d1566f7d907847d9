"""The API's resources derived from the system's records: the one place
that decides what of a record a user sees.

Records (services.internal.v1 JobRecord / DatasetRecord) hold what the
system needs; the public messages (fityard.v1 Job / Dataset) show what a
user needs. Fields are copied by name, one by one, so a field added to a
record stays internal until it is added here too."""

from __future__ import annotations

from fityard.v1 import datasets_pb2, jobs_pb2
from services.common.config import DEFAULT_LANE, SMALL_LANE
from services.common.tracing import trace_id_of
from services.internal.v1 import records_pb2

# The public priority of each lane (services/common/config.py: LANES).
LANE_PRIORITIES = {
    SMALL_LANE: jobs_pb2.PRIORITY_INTERACTIVE,
    DEFAULT_LANE: jobs_pb2.PRIORITY_BATCH,
}

# Message fields: copied only when set, so an unset time stays unset.
_JOB_MESSAGES = ("params", "create_time", "start_time", "end_time", "metrics")


def public_job(record: records_pb2.JobRecord) -> jobs_pb2.Job:
    job = jobs_pb2.Job(
        id=record.id,
        kind=record.kind,
        state=record.state,
        dataset_id=record.dataset_id,
        model_id=record.model_id,
        attempts=record.attempts,
        progress=record.progress,
        progress_message=record.progress_message,
        error=record.error,
        outputs=record.outputs,
        rows=record.rows,
        lost_attempts=record.lost_attempts,
        timeout_seconds=record.timeout_seconds,
        trace_id=trace_id_of(record.traceparent),
        cached=bool(record.cached_from),
        cached_from=record.cached_from,
        priority=LANE_PRIORITIES.get(record.lane, jobs_pb2.PRIORITY_UNSPECIFIED),
        queue_position=record.queue_position,
        estimated_wait_seconds=record.estimated_wait_seconds,
        probabilities=record.probabilities,
    )
    for name in _JOB_MESSAGES:
        if record.HasField(name):
            getattr(job, name).CopyFrom(getattr(record, name))
    return job


def public_dataset(record: records_pb2.DatasetRecord) -> datasets_pb2.Dataset:
    dataset = datasets_pb2.Dataset(
        id=record.id,
        name=record.name,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        rows=record.rows,
        columns=record.columns,
    )
    if record.HasField("create_time"):
        dataset.create_time.CopyFrom(record.create_time)
    return dataset
