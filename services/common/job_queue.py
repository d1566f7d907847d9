"""The JOBS stream seen as a queue of jobs: put a job on it, see whether a
job is still on it, take a job off it.

One message per job, on the job's own subject (bus.job_subject), published
with the job id as JetStream's de-duplication id, so a publish retried after
a timeout does not queue the job twice. Shared by submission, cancellation
and the scheduler's reconciliation, which must agree on all of this.
"""

from __future__ import annotations

import uuid

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.internal.v1 import bus_pb2, records_pb2

from . import bus
from .jobs import kind_name
from .retry import retrying
from .tracing import send_span, with_trace_headers


def subject_of(job: records_pb2.JobRecord) -> str:
    return bus.job_subject(job.lane, kind_name(job.kind), job.tenant, job.id)


async def publish(
    js: JetStreamContext,
    job: records_pb2.JobRecord,
    *,
    within: float = 10.0,
    again: bool = False,
) -> None:
    """Queue `job` (retrying NATS blips for `within` seconds). `again`: a
    re-publish of a job whose first message was lost; it needs a
    de-duplication id of its own, or JetStream would drop it as a repeat of
    the first for its duplicate window (bus.DUPLICATE_WINDOW_SECONDS)."""
    # Only QUEUED jobs are published, with no attempt unfinished: the first
    # delivery runs as the next attempt without asking (scheduler/attempts.py).
    task = bus_pb2.JobTask(job=job, first_attempt=job.attempts + 1).SerializeToString()
    msg_id = f"{job.id}.{uuid.uuid4().hex[:8]}" if again else job.id
    subject = subject_of(job)
    # In the job's trace (the submit's span), whoever publishes it.
    with send_span(subject, parent=job.traceparent, message_id=msg_id):
        headers = with_trace_headers(
            {bus.HDR_MSG_ID: msg_id, bus.HDR_TENANT: job.tenant, bus.HDR_JOB_ID: job.id}
        )
        await retrying(
            lambda: js.publish(subject, task, headers=headers),
            f"queueing {job.id}",
            within=within,
        )


async def is_queued(js: JetStreamContext, job: records_pb2.JobRecord) -> bool:
    """True while the job's message is in the stream: waiting, or delivered
    to a trainer that has not acked it yet."""
    try:
        await js.get_last_msg(bus.JOBS_STREAM, subject_of(job))
    except NotFoundError:
        return False
    return True


async def remove(js: JetStreamContext, job: records_pb2.JobRecord) -> None:
    """Take the job's message off the stream (a cancelled job): no trainer
    will be handed it again."""
    await js.purge_stream(bus.JOBS_STREAM, subject=subject_of(job))


async def has_unread_events(js: JetStreamContext, job: records_pb2.JobRecord) -> bool:
    """True while trainer events of the job wait on the EVENTS stream (a
    work queue: the scheduler deletes an event by acking it once folded).
    A record lagging behind its events must not be taken for the truth."""
    try:
        await js.get_last_msg(bus.EVENTS_STREAM, bus.event_subject(job.tenant, job.id))
    except NotFoundError:
        return False
    return True
