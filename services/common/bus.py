"""The NATS JetStream topology every service shares: streams, consumers, KV
buckets and subject names, declared once here.

- JOBS stream (work queue), subjects ``jobs.<lane>.<kind>.<tenant>.<job_id>``:
  the scheduler publishes one message per queued job on its lane (``small``
  or ``default``, by its work); trainers share one durable pull consumer per
  lane (LANE_CONSUMERS), so each job goes to exactly one trainer, and take
  from the small lane first. A subject
  per job lets the scheduler see whether a job's message is still there
  (reconciliation) and remove it (cancellation) without reading the queue. A job is acked only
  once its outputs are stored; a trainer that dies leaves it to be
  redelivered after ``ack_wait`` (FITYARD_ACK_WAIT_SECONDS), while a live
  one keeps its job with in-progress heartbeats. JetStream redelivers
  without limit: deliveries are not attempts (a nak on shutdown, a fetch
  that timed out as the message arrived), so trainers count the attempts
  that died in the job record and fail the job after FITYARD_MAX_ATTEMPTS.
- EVENTS stream (work queue), subjects ``events.<tenant>.<job_id>``:
  trainers report RUNNING / progress / SUCCEEDED / FAILED; the scheduler
  folds them into the job records. Durable, so no report is lost while the
  scheduler restarts.
- ``control.cancel.<tenant>.<job_id>`` (core NATS): the scheduler asks
  whichever trainer runs the job to stop it.
- KV bucket ``fityard_jobs`` (key ``<tenant>.<job_id>``): job records, written
  only by the scheduler, read and watched by the gateway.
- KV bucket ``fityard_datasets`` (key ``<tenant>.<dataset_id>``): dataset
  records, written by the gateway.
- KV bucket ``fityard_requests`` (key ``<tenant>.<hash of a request id>``):
  the job each idempotency key created, written once (create-if-absent) by
  the scheduler, so a repeated submit finds its job.
- KV bucket ``fityard_trainers`` (key ``<trainer_id>``): each trainer's
  TrainerStatus, for operators (`fityard top`); entries expire after
  TRAINER_STATUS_TTL_SECONDS, so a trainer that died without a word drops
  out of the list.

Every service calls `ensure_topology` at start-up; it is idempotent, so start
order does not matter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from .config import DEFAULT_LANE, SMALL_LANE, Config

log = logging.getLogger(__name__)

JOBS_STREAM = "FITYARD_JOBS"
EVENTS_STREAM = "FITYARD_EVENTS"
JOBS_BUCKET = "fityard_jobs"
DATASETS_BUCKET = "fityard_datasets"
REQUESTS_BUCKET = "fityard_requests"
# `<tenant>.<sha256>` -> the id of the tenant's dataset with those bytes
# (written by the gateway): each content is stored once.
DIGESTS_BUCKET = "fityard_digests"
# `<tenant>.<fit key>` -> the fit job whose model answers fits of the same
# dataset bytes and parameters with a fixed random_state (scheduler).
FITS_BUCKET = "fityard_fits"
TRAINERS_BUCKET = "fityard_trainers"
# A trainer refreshes its status this often; an entry not refreshed for the
# TTL (three refreshes missed) is gone.
TRAINER_STATUS_REFRESH_SECONDS = 5.0
TRAINER_STATUS_TTL_SECONDS = 15.0
TRAINERS_CONSUMER = "trainers"
SCHEDULER_CONSUMER = "scheduler"
# The trainers' consumer of each lane, in the order trainers take from
# them: small jobs first. The default lane keeps the consumer every lane
# used to share (its filter narrowed), so jobs queued before lanes existed
# are still delivered.
LANE_CONSUMERS = {SMALL_LANE: f"{TRAINERS_CONSUMER}-{SMALL_LANE}", DEFAULT_LANE: TRAINERS_CONSUMER}

# Message header names. Trace context (W3C traceparent) travels in headers too.
HDR_TENANT = "Fityard-Tenant"
HDR_JOB_ID = "Fityard-Job-Id"
HDR_MSG_ID = "Nats-Msg-Id"  # JetStream de-duplication
EVENTS_ACK_WAIT_SECONDS = 10.0
# How long JetStream remembers a message id to drop repeats of it.
DUPLICATE_WINDOW_SECONDS = 120.0


def job_subject(lane: str, kind: str, tenant: str, job_id: str) -> str:
    return f"jobs.{lane}.{kind}.{tenant}.{job_id}"


def lane_subjects(lane: str) -> str:
    """Every job subject of `lane`: its consumer's filter."""
    return f"jobs.{lane}.>"


def event_subject(tenant: str, job_id: str) -> str:
    return f"events.{tenant}.{job_id}"


def cancel_subject(tenant: str, job_id: str) -> str:
    return f"control.cancel.{tenant}.{job_id}"


CANCEL_WILDCARD = "control.cancel.>"


def record_key(tenant: str, record_id: str) -> str:
    """KV key of a job or dataset record."""
    return f"{tenant}.{record_id}"


def request_key(tenant: str, request_id: str) -> str:
    """KV key of an idempotency key (any string a client chose: hashed)."""
    return f"{tenant}.{hashlib.sha256(request_id.encode()).hexdigest()[:32]}"


async def connect(url: str, name: str, *, token: str = "", attempts: int = 60) -> NATS:
    """Connect to NATS (with `token` when it requires one: FITYARD_NATS_TOKEN),
    retrying while the server is still starting.

    Services may start before nats-server accepts connections (compose,
    Kubernetes, `fityard up`); they wait instead of crashing.
    """
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await nats.connect(
                url,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                token=token or None,
                **_connection_logging(),
            )
        except Exception as exc:  # noqa: BLE001 - any connect failure means "retry"
            last = exc
            await asyncio.sleep(0.5)
    raise RuntimeError(f"could not connect to NATS at {redacted(url)}: {last}")


def redacted(url: str) -> str:
    """The URL without credentials, for logs and errors."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url.rpartition("@")[2]


def _connection_logging() -> dict:
    """nats-py's callbacks, logging one line per change instead of its
    default: a traceback at ERROR for every failed reconnect (twice a
    second while nats-server is down)."""
    said = [""]

    async def error_cb(exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != said[0]:
            said[0] = text
            log.warning("NATS: %s", text)

    async def reconnected_cb() -> None:
        said[0] = ""
        log.info("NATS connection back")

    return {
        "error_cb": error_cb,
        "reconnected_cb": reconnected_cb,
    }


async def _add_or_update_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Exists with another config (e.g. after an upgrade): converge to ours.
        await js.update_stream(config)


async def ensure_topology(js: JetStreamContext, config: Config) -> None:
    """Create (or converge) the streams, consumers and buckets fityard needs.

    Consumers are created or updated to `config` (JetStream updates a durable
    consumer in place when its settings change, e.g. the ack deadline)."""
    await _add_or_update_stream(
        js,
        StreamConfig(
            name=JOBS_STREAM,
            subjects=["jobs.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=config.nats_replicas,
        ),
    )
    await _add_or_update_stream(
        js,
        StreamConfig(
            name=EVENTS_STREAM,
            subjects=["events.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=config.nats_replicas,
        ),
    )
    # One durable pull consumer per lane (a work-queue stream's consumers
    # may not overlap: the default lane's is narrowed first).
    for lane in (DEFAULT_LANE, *(lane for lane in LANE_CONSUMERS if lane != DEFAULT_LANE)):
        await js.add_consumer(
            JOBS_STREAM,
            ConsumerConfig(
                durable_name=LANE_CONSUMERS[lane],
                filter_subject=lane_subjects(lane),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=config.ack_wait_seconds,
                max_deliver=-1,  # attempts are counted in the record, not here
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=-1,
            ),
        )
    await js.add_consumer(
        EVENTS_STREAM,
        ConsumerConfig(
            durable_name=SCHEDULER_CONSUMER,
            filter_subject="events.>",
            ack_policy=AckPolicy.EXPLICIT,
            # Events a killed scheduler held come back after this; folding a
            # batch takes milliseconds, and folding an event twice is harmless.
            ack_wait=EVENTS_ACK_WAIT_SECONDS,
            deliver_policy=DeliverPolicy.ALL,
        ),
    )
    replicas = config.nats_replicas
    for name in BUCKETS:
        await bucket(js, name, replicas)


# Each KV bucket: what it holds (its description in `nats kv ls`) and how
# long an entry lives (None: until deleted).
BUCKETS: dict[str, tuple[str, float | None]] = {
    JOBS_BUCKET: ("fityard job records (written by the scheduler)", None),
    DATASETS_BUCKET: ("fityard dataset records (written by the gateway)", None),
    REQUESTS_BUCKET: ("fityard idempotency keys: the job each created (scheduler)", None),
    TRAINERS_BUCKET: (
        "fityard trainers' own status (each trainer writes its key; entries expire)",
        TRAINER_STATUS_TTL_SECONDS,
    ),
    DIGESTS_BUCKET: (
        "fityard datasets by content: <tenant>.<sha256> -> dataset id (gateway)",
        None,
    ),
    FITS_BUCKET: (
        "fityard fit cache: <tenant>.<dataset sha256 and params> -> fit job id (scheduler)",
        None,
    ),
}


async def bucket(js: JetStreamContext, name: str, replicas: int = 1) -> KeyValue:
    """The bucket `name` (one of BUCKETS), created with `replicas` copies if
    it does not exist (ensure_topology creates them all at start, with
    FITYARD_NATS_REPLICAS; other callers only open them)."""
    try:
        return await js.key_value(name)
    except Exception:  # noqa: BLE001 - missing bucket: create it
        description, ttl = BUCKETS[name]
        return await js.create_key_value(
            KeyValueConfig(
                bucket=name,
                description=description,
                history=1,
                storage=StorageType.FILE,
                ttl=ttl,
                replicas=replicas,
            )
        )


async def jobs_bucket(js: JetStreamContext) -> KeyValue:
    return await bucket(js, JOBS_BUCKET)


async def datasets_bucket(js: JetStreamContext) -> KeyValue:
    return await bucket(js, DATASETS_BUCKET)


async def trainers_bucket(js: JetStreamContext) -> KeyValue:
    return await bucket(js, TRAINERS_BUCKET)


async def requests_bucket(js: JetStreamContext) -> KeyValue:
    return await bucket(js, REQUESTS_BUCKET)


async def digests_bucket(js: JetStreamContext) -> KeyValue:
    return await bucket(js, DIGESTS_BUCKET)


async def fits_bucket(js: JetStreamContext) -> KeyValue:
    return await bucket(js, FITS_BUCKET)
