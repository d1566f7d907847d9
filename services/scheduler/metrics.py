"""The scheduler's metrics: jobs by outcome, their waits and runs, the queue.

The scheduler is the one writer of job records, so it counts each job once:
submitted when its record is created, ended when its record turns
terminal (a trainer's final event folded, or a cancel), whatever number
of trainers, attempts and redelivered events there were. A job's times are
the record's (submit, start of the attempt that counts, end), not any
process's clock at scrape time.

The queue is read from JetStream when Prometheus scrapes, so it is as
fresh as the scrape and costs nothing between scrapes.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fityard.v1 import jobs_pb2
from services.common import bus
from services.common.jobs import kind_name, state_name
from services.internal.v1 import records_pb2

log = logging.getLogger(__name__)

# Seconds, from a toy job's milliseconds to a day's fit.
JOB_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    24 * 3600.0,
)
JOBS_SUBMITTED = Counter("fityard_jobs_submitted", "Jobs accepted, by kind.", ["kind"])
JOBS_ENDED = Counter(
    "fityard_jobs_ended",
    "Jobs that reached a terminal state, by kind, state (SUCCEEDED, FAILED, "
    "CANCELLED) and reason (FAILED: invalid_data, timeout, process_died, "
    "internal_error; CANCELLED: user; SUCCEEDED: none; cached: a fit answered "
    "by the fit cache, FAILED if the fit it waited for failed).",
    ["kind", "state", "reason"],
)
QUEUE_WAIT = Histogram(
    "fityard_job_queue_wait_seconds",
    "From submit to the job's first start on a trainer, by kind.",
    ["kind"],
    buckets=JOB_BUCKETS,
)
RUN_TIME = Histogram(
    "fityard_job_run_seconds",
    "From the start of a job's last attempt to its end, by kind and final state.",
    ["kind", "state"],
    buckets=JOB_BUCKETS,
)

# A scrape waits this long for JetStream, then reports no queue figures.
QUEUE_READ_SECONDS = 2.0


def submitted(job: records_pb2.JobRecord) -> None:
    JOBS_SUBMITTED.labels(kind_name(job.kind)).inc()


def started(job: records_pb2.JobRecord, attempts_before: int) -> None:
    """The record now says RUNNING; `attempts_before`: its attempts before."""
    if attempts_before == 0 and job.attempts >= 1:
        wait = _seconds(job.start_time) - _seconds(job.create_time)
        QUEUE_WAIT.labels(kind_name(job.kind)).observe(max(wait, 0.0))


def ended(job: records_pb2.JobRecord, reason: str = "") -> None:
    """The record just turned terminal."""
    kind, state = kind_name(job.kind), state_name(job.state)
    if not reason:
        reason = {jobs_pb2.JOB_STATE_CANCELLED: "user", jobs_pb2.JOB_STATE_FAILED: "unknown"}.get(
            job.state, "none"
        )
    JOBS_ENDED.labels(kind, state, reason).inc()
    if job.HasField("start_time") and job.HasField("end_time"):
        run = _seconds(job.end_time) - _seconds(job.start_time)
        RUN_TIME.labels(kind, state).observe(max(run, 0.0))


def _seconds(timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


class QueueCollector(Collector):
    """Queue depth per lane from the trainers' JetStream consumer, read on
    the scheduler's event loop at each scrape (the HTTP server's thread
    hands the read over and waits for it)."""

    def __init__(self, js: JetStreamContext, loop: asyncio.AbstractEventLoop):
        self.js = js
        self.loop = loop

    def describe(self):
        return []  # not known without asking JetStream: registration must not ask

    def collect(self):
        waiting = GaugeMetricFamily(
            "fityard_queue_depth",
            "Jobs waiting for a trainer, by lane (the consumer's pending messages: what KEDA scales on).",
            labels=["lane"],
        )
        held = GaugeMetricFamily(
            "fityard_queue_held",
            "Jobs delivered to a trainer and not acked yet (running or starting), by lane.",
            labels=["lane"],
        )
        redelivered = GaugeMetricFamily(
            "fityard_queue_redelivered",
            "Jobs held by a trainer that were delivered more than once, by lane.",
            labels=["lane"],
        )
        for lane, consumer in bus.LANE_CONSUMERS.items():
            info = self._consumer_info(consumer)
            if info is None:
                continue
            waiting.add_metric([lane], info.num_pending or 0)
            held.add_metric([lane], info.num_ack_pending or 0)
            redelivered.add_metric([lane], info.num_redelivered or 0)
        yield from (waiting, held, redelivered)

    def _consumer_info(self, consumer: str):
        future = asyncio.run_coroutine_threadsafe(
            self.js.consumer_info(bus.JOBS_STREAM, consumer), self.loop
        )
        try:
            return future.result(QUEUE_READ_SECONDS)
        except Exception as exc:  # noqa: BLE001 - a scrape without queue figures, not a failed one
            future.cancel()
            log.warning("metrics: could not read the %s consumer: %s", consumer, exc)
            return None


def watch_queue(js: JetStreamContext) -> QueueCollector:
    """Report the queue at every scrape (call on the scheduler's loop)."""
    collector = QueueCollector(js, asyncio.get_running_loop())
    REGISTRY.register(collector)
    return collector
