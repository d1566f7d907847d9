"""Folding trainer events into job records.

Trainers never write records; they publish TrainerEvents and the scheduler,
the records' only writer, applies them here. A record in a terminal state
never changes again, so a late or duplicated event (a redelivered job, a
trainer finishing a job the user just cancelled) is ignored.
"""
from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from fityard.internal.v1 import bus_pb2
from fityard.v1 import jobs_pb2
from services.common import bus
from services.common.records import TERMINAL_STATES

from .store import update_job

log = logging.getLogger(__name__)

# An event for a job with no record is retried this many times (5 s in all)
# before it is dropped as belonging to no job.
UNKNOWN_JOB_RETRIES = 100


def apply_event(job: jobs_pb2.Job, event: bus_pb2.TrainerEvent) -> bool:
    """Apply `event` to `job` in place; False if it changes nothing."""
    if job.state in TERMINAL_STATES:
        return False
    if event.state == jobs_pb2.JOB_STATE_RUNNING:
        if event.attempt > job.attempts:  # a new attempt starts
            job.attempts = event.attempt
            job.start_time.CopyFrom(event.time)
        job.state = jobs_pb2.JOB_STATE_RUNNING
        job.trainer_id = event.trainer_id
        if event.cores:
            job.cores = event.cores
        job.progress = event.progress
        job.progress_message = event.progress_message
        if event.rows:
            job.rows = event.rows
        return True
    if event.state in TERMINAL_STATES:
        job.state = event.state
        job.end_time.CopyFrom(event.time)
        job.error = event.error
        job.progress_message = event.progress_message
        job.trainer_id = event.trainer_id or job.trainer_id
        if event.rows:
            job.rows = event.rows
        del job.outputs[:]
        job.outputs.extend(event.outputs)
        if event.state == jobs_pb2.JOB_STATE_SUCCEEDED:
            job.progress = 1.0
        return True
    log.warning("ignoring event with state %s for %s", event.state, event.job_id)
    return False


async def consume_events(js: JetStreamContext, jobs: KeyValue, stop: asyncio.Event) -> None:
    """Apply trainer events until `stop` is set. Each event is acked after its
    record is written, so a scheduler crash loses none."""
    sub = await js.pull_subscribe_bind(bus.SCHEDULER_CONSUMER, stream=bus.EVENTS_STREAM)
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch=128, timeout=1.0)
            except asyncio.TimeoutError:
                continue
            for msg in msgs:
                try:
                    event = bus_pb2.TrainerEvent.FromString(msg.data)
                    applied = await update_job(jobs, event.tenant, event.job_id, lambda job: apply_event(job, event))
                except Exception:  # noqa: BLE001 - a bad event must not stop the loop
                    log.exception("could not apply event on %s", msg.subject)
                    applied = True  # retrying would not help
                if applied is None and msg.metadata.num_delivered < UNKNOWN_JOB_RETRIES:
                    # The record is written while the job is published, so a
                    # quick trainer can report before it is visible: retry.
                    await msg.nak(delay=0.05)
                    continue
                await msg.ack()
    finally:
        await sub.unsubscribe()
