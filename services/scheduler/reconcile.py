"""Reconciliation: the NATS topology exists, and every queued job has its
message on the JOBS stream.

Submission writes the record, then publishes; if NATS fails in between (or
the scheduler dies there), the record says QUEUED and no trainer will ever
see the job. At start and every FITYARD_RECONCILE_SECONDS the scheduler
looks at every QUEUED record and re-publishes those whose message is not on
the stream. Records younger than a submit's own publish retries are left
alone, so a re-publish cannot double a message a slow submit is still
sending; so are jobs with trainer events not folded yet (a scheduler that
restarts catches up on events while it reconciles: the record says QUEUED
while the job has run). (A message with no record is the trainers' side:
they drop it.)
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from fityard.v1 import jobs_pb2
from services.common import bus, job_queue
from services.common.config import Config
from services.common.records import get_record, list_records
from services.common.retry import TRANSIENT

log = logging.getLogger(__name__)

# A record younger than this may still be publishing (SubmitJob retries its
# publish for SUBMIT_PUBLISH_SECONDS): leave it alone.
GRACE_SECONDS = 15.0


async def reconcile_once(js: JetStreamContext, jobs: KeyValue) -> int:
    """Re-publish QUEUED jobs missing from the stream; return how many."""
    republished = 0
    now = datetime.now(timezone.utc)
    for job in await list_records(jobs, "*", jobs_pb2.Job):
        if job.state != jobs_pb2.JOB_STATE_QUEUED:
            continue
        if (now - job.create_time.ToDatetime(timezone.utc)).total_seconds() < GRACE_SECONDS:
            continue
        if await job_queue.is_queued(js, job):
            continue
        if await job_queue.has_unread_events(js, job):
            continue  # a trainer took it (and maybe finished it): the record is behind
        await job_queue.publish(js, job, await _model_attempt(jobs, job), again=True)
        log.warning("re-queued %s: its record said QUEUED but its message was missing", job.id)
        republished += 1
    return republished


async def _model_attempt(jobs: KeyValue, job: jobs_pb2.Job) -> int:
    if job.kind != jobs_pb2.JOB_KIND_PREDICT:
        return 0
    found = await get_record(jobs, job.tenant, job.model_id, jobs_pb2.Job)
    return found[0].attempts if found else 0


async def reconcile_periodically(
    js: JetStreamContext, jobs: KeyValue, config: Config, stop: asyncio.Event
) -> None:
    """Every FITYARD_RECONCILE_SECONDS (and at once) until `stop`: converge
    the streams, consumers and buckets (one deleted by an operator, or lost
    with a NATS store, is recreated, so trainers and gateways carry on),
    then reconcile_once."""
    every = config.reconcile_seconds
    while not stop.is_set():
        try:
            await bus.ensure_topology(js, config)
            await reconcile_once(js, jobs)
        except (
            *TRANSIENT,
            NotFoundError,
        ) as exc:  # not found: deleted meanwhile, recreated next time
            log.warning("reconciliation failed (%s); trying again in %.0f s", exc, every)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass
