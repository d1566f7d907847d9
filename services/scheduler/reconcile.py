"""Reconciliation: the NATS topology exists, and every queued job has its
message on the JOBS stream.

Submission writes the record, then publishes; if NATS fails in between (or
the scheduler dies there), the record says QUEUED and no trainer will ever
see the job. At start and every FITYARD_RECONCILE_SECONDS the scheduler
looks at every QUEUED record and re-publishes those whose message is not on
the stream (a job waiting for the same fit has none: it is settled if that
fit has ended, see fit_cache.py). Records younger than a submit's own publish retries are left
alone, so a re-publish cannot double a message a slow submit is still
sending; so are jobs with trainer events not folded yet (a scheduler that
restarts catches up on events while it reconciles: the record says QUEUED
while the job has run). (A message with no record is the trainers' side:
they drop it.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from nats.js.errors import NotFoundError

from fityard.v1 import jobs_pb2
from services.common import bus, job_queue
from services.common.logs import job_context
from services.common.records import list_records
from services.common.retry import TRANSIENT
from services.internal.v1 import records_pb2

from .context import SchedulerContext
from .fit_cache import FitCache

log = logging.getLogger(__name__)

# A record younger than this may still be publishing (SubmitJob retries its
# publish for SUBMIT_PUBLISH_SECONDS): leave it alone.
GRACE_SECONDS = 15.0


async def reconcile_once(ctx: SchedulerContext) -> int:
    """Re-publish QUEUED jobs missing from the stream; return how many.
    The records read also rebuild the scheduler's view of live jobs (live_jobs.py)."""
    js = ctx.js
    republished = 0
    cache = FitCache(ctx)
    now = datetime.now(timezone.utc)
    read_since = time.monotonic()
    records = await list_records(ctx.jobs, "*", records_pb2.JobRecord)
    ctx.live.reset(records, read_since)
    for job in records:
        if job.state != jobs_pb2.JOB_STATE_QUEUED:
            continue
        if (now - job.create_time.ToDatetime(timezone.utc)).total_seconds() < GRACE_SECONDS:
            continue
        if job.cached_from:  # waits for the same fit, is never queued itself (fit_cache.py)
            await cache.check_waiting(job)
            continue
        if await job_queue.is_queued(js, job):
            continue
        if await job_queue.has_unread_events(js, job):
            continue  # a trainer took it (and maybe finished it): the record is behind
        with job_context(job.id):
            await job_queue.publish(js, job, again=True)
            log.warning("re-queued %s: its record said QUEUED but its message was missing", job.id)
        republished += 1
    return republished


async def reconcile_periodically(ctx: SchedulerContext, stop: asyncio.Event) -> None:
    """Every FITYARD_RECONCILE_SECONDS (and at once) until `stop`: converge
    the streams, consumers and buckets (one deleted by an operator, or lost
    with a NATS store, is recreated, so trainers and gateways carry on),
    then reconcile_once."""
    every = ctx.config.reconcile_seconds
    while not stop.is_set():
        try:
            await bus.ensure_topology(ctx.js, ctx.config)
            await reconcile_once(ctx)
        except (
            *TRANSIENT,
            NotFoundError,
        ) as exc:  # not found: deleted meanwhile, recreated next time
            log.warning("reconciliation failed (%s); trying again in %.0f s", exc, every)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass
