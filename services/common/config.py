"""Configuration from environment variables: the one schema of fityard's settings.

Every service reads its settings here, once, at start-up. The defaults make a
single machine work with no settings at all (a nats-server on localhost, a local
object-store directory); docker compose and Kubernetes set the variables.

Each setting is declared once, below, as a field made by `setting(...)`
(services/common/settings.py): its variable, default, doc and the services
that read it. `SCHEMA` lists them all; everything else that names a setting
derives from it or is checked against it (the README's table, .env.example,
docker-compose.yml, the Helm chart, the environment `fityard up` gives its
children), so that a setting cannot be added, renamed or dropped in one of
those places only.

The client's variables (FITYARD_ADDRESS, FITYARD_API_KEY, FITYARD_TLS, ...)
are not here: the SDK (fityard/) must not import server code, so it owns
them (fityard/_auth.py, fityard/client.py, fityard/traces.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cpu_limit import cpu_limit
from .settings import (
    GATEWAY,
    PREDICTOR,
    SCHEDULER,
    SERVICES,
    TRAINER,
    Schema,
    Setting,
    group,
    read,
    setting,
)

DEFAULT_TENANT = "default"


def usable_cores() -> int:
    """CPUs this process may use: the CPUs it may run on (taskset/cpusets,
    unlike os.cpu_count()), and no more than its container's CPU limit
    (the cgroup CPU quota, rounded up: services/common/cpu_limit.py)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = cpu_limit()
    return min(cores, limit) if limit else cores


# Lanes (services/common/bus.py): a job's work decides its lane; trainers
# take from the small lane first, so a toy job never waits behind long ones.
DEFAULT_LANE = "default"
SMALL_LANE = "small"
LANES = (SMALL_LANE, DEFAULT_LANE)  # the order trainers take from


# What services/common/logs.py accepts (kept here so that config imports no service code).
LOG_FORMATS = ("json", "text")
EVENT_LOOPS = ("uvloop", "asyncio")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _trainer_lanes(declared: Setting, raw: str) -> str:
    """FITYARD_TRAINER_LANES, checked: known lane names, comma-separated."""
    lanes = [lane.strip() for lane in raw.split(",") if lane.strip()]
    unknown = [lane for lane in lanes if lane not in LANES]
    if unknown:
        raise SystemExit(
            f"{declared.env}={raw!r} names unknown lane(s) {', '.join(unknown)}: the lanes are {', '.join(LANES)}"
        )
    return ",".join(lanes)


def _quarter_of_the_ack_deadline(values: Mapping[str, Any]) -> float:
    """The heartbeat's default. Tied to the deadline so that changing one
    cannot make healthy jobs redeliver: three heartbeats may be late."""
    return values["ack_wait_seconds"] / 4


def _heartbeat_within_the_deadline(values: Mapping[str, Any]) -> None:
    heartbeat, ack_wait = values["heartbeat_seconds"], values["ack_wait_seconds"]
    if heartbeat > ack_wait / 2:
        raise SystemExit(
            f"{SCHEMA.env('heartbeat_seconds')}={heartbeat:g} must be at most half of "
            f"{SCHEMA.env('ack_wait_seconds')}={ack_wait:g}, "
            "or a healthy job is redelivered when one heartbeat is late"
        )


def _s3_credentials_given(values: Mapping[str, Any]) -> None:
    """No default pair: MinIO's well-known minioadmin would let a store
    reached by mistake accept fityard's data."""
    if values["backend"] == "s3" and not (values["access_key"] and values["secret_key"]):
        raise SystemExit(
            f"{SCHEMA.env('storage.backend')}=s3 needs {SCHEMA.env('storage.access_key')} and "
            f"{SCHEMA.env('storage.secret_key')} (from the environment or a secret; there is no default)"
        )


@dataclass(frozen=True)
class StorageConfig:
    """Where objects live: `local` (a directory) or `s3` (MinIO or any S3)."""

    backend: str = setting(
        "FITYARD_STORAGE",
        "local",
        "the object store: local (a directory) or s3 (MinIO or any S3)",
        SERVICES,
    )
    access_key: str = setting(
        "FITYARD_S3_ACCESS_KEY",
        "",
        "the S3 access key (no default: required with s3)",
        SERVICES,
        secret=True,
    )
    secret_key: str = setting(
        "FITYARD_S3_SECRET_KEY",
        "",
        "the S3 secret key (no default: required with s3)",
        SERVICES,
        secret=True,
        check=_s3_credentials_given,
    )
    root: Path = setting(
        "FITYARD_STORAGE_DIR", Path(".fityard/objects"), "the local store's directory", SERVICES
    )
    endpoint: str = setting(
        "FITYARD_S3_ENDPOINT", "localhost:9000", "the S3 endpoint, host:port (no scheme)", SERVICES
    )
    bucket: str = setting("FITYARD_S3_BUCKET", "fityard", "the S3 bucket", SERVICES)
    secure: bool = setting(
        "FITYARD_S3_SECURE", False, "S3 over https (true) or http (false)", SERVICES
    )
    region: str = setting("FITYARD_S3_REGION", "us-east-1", "the S3 region", SERVICES)
    part_size: int = setting(
        "FITYARD_S3_PART_SIZE",
        8 * 1024 * 1024,
        "the part size of S3 multipart uploads, bytes (S3's minimum is 5 MiB)",
        SERVICES,
    )

    @classmethod
    def from_env(cls) -> StorageConfig:
        return read(cls)


@dataclass(frozen=True)
class Config:
    """Settings shared by all services; each service uses the part it needs."""

    nats_url: str = setting(
        "FITYARD_NATS_URL",
        "nats://127.0.0.1:4222",
        "NATS with JetStream (no credentials: see FITYARD_NATS_TOKEN)",
        SERVICES,
    )
    storage: StorageConfig = group(StorageConfig)
    log_format: str = setting(
        "FITYARD_LOG_FORMAT",
        "",
        "log lines as json or text; empty: json unless stderr is a terminal",
        SERVICES,
        choices=LOG_FORMATS,
    )
    event_loop: str = setting(
        "FITYARD_EVENT_LOOP",
        "uvloop",
        "the services' asyncio event loop: uvloop (libuv: less CPU per NATS and gRPC message) or asyncio (the standard library's)",
        SERVICES,
        choices=EVENT_LOOPS,
    )
    log_level: str = setting(
        "FITYARD_LOG_LEVEL",
        "INFO",
        f"the log level: {', '.join(LOG_LEVELS)}",
        SERVICES,
        choices=LOG_LEVELS,
        upper=True,
    )
    metrics_listen: str = setting(
        "FITYARD_METRICS_LISTEN",
        "",
        "where to serve Prometheus /metrics, host:port; empty: nowhere",
        SERVICES,
    )
    # housekeeping (services/common/scratch.py: sweep_periodically)
    sweep_seconds: float = setting(
        "FITYARD_SWEEP_SECONDS",
        3600.0,
        "how often abandoned uploads and scratch files are swept, seconds",
        (GATEWAY, TRAINER),
    )
    stale_upload_seconds: float = setting(
        "FITYARD_STALE_UPLOAD_SECONDS",
        6 * 3600.0,
        "an unfinished upload idle this long, seconds, counts as abandoned",
        (GATEWAY,),
    )
    scratch_dir: str = setting(
        "FITYARD_SCRATCH_DIR",
        "",
        "root of the per-process scratch directories; empty: fityard-scratch-UID in the temp dir",
        (TRAINER,),
    )
    gateway_listen: str = setting(
        "FITYARD_GATEWAY_LISTEN",
        "0.0.0.0:50051",
        "where the gateway serves the API, host:port",
        (GATEWAY,),
    )
    scheduler_address: str = setting(
        "FITYARD_SCHEDULER_ADDRESS",
        "127.0.0.1:50052",
        "where the gateway reaches the scheduler",
        (GATEWAY,),
    )
    max_upload_bytes: int = setting(
        "FITYARD_MAX_UPLOAD_BYTES", 64 * 1024**3, "the largest upload, bytes", (GATEWAY,)
    )
    # Each transfer has a thread of its own for the store.
    max_transfers: int = setting(
        "FITYARD_MAX_TRANSFERS",
        64,
        "uploads and downloads served at once; one more gets RESOURCE_EXHAUSTED",
        (GATEWAY,),
    )
    transfer_idle_seconds: float = setting(
        "FITYARD_TRANSFER_IDLE_SECONDS",
        60.0,
        "an upload or download idle this long, seconds, is ended",
        (GATEWAY,),
    )
    scheduler_listen: str = setting(
        "FITYARD_SCHEDULER_LISTEN",
        "0.0.0.0:50052",
        "where the scheduler serves, host:port",
        (SCHEDULER,),
    )
    trainer_id: str = setting(
        "FITYARD_TRAINER_ID", "", "a trainer's id; empty: its host name and pid", (TRAINER,)
    )
    trainer_threads: int = setting(
        "FITYARD_TRAINER_THREADS",
        0,
        "most threads one job may use; 0: every usable core",
        (TRAINER,),
        minimum=0,
    )
    # A trainer has no other gRPC service; without it, its health is in its log lines.
    trainer_health_listen: str = setting(
        "FITYARD_TRAINER_HEALTH_LISTEN",
        "",
        "where a trainer serves grpc.health.v1, host:port; empty: nowhere",
        (TRAINER,),
    )
    # services/trainer/cores.py
    core_leases_dir: str = setting(
        "FITYARD_CORE_LEASES_DIR",
        "",
        "per-core lock files shared by the trainers of one machine; empty: this trainer owns its cores",
        (TRAINER,),
    )
    # 1 on one nats-server, 3 on a 3-node cluster (the Helm chart's), so the
    # loss of one NATS node loses no job, event or record. Applied when a
    # stream or bucket is created (a stream's also when it is converged).
    nats_replicas: int = setting(
        "FITYARD_NATS_REPLICAS",
        1,
        "copies JetStream keeps of each stream and KV bucket fityard creates",
        SERVICES,
    )
    # Kept out of FITYARD_NATS_URL so that no log line of the URL shows it.
    nats_token: str = setting(
        "FITYARD_NATS_TOKEN",
        "",
        "the token nats-server requires; empty: none",
        SERVICES,
        secret=True,
    )
    ack_wait_seconds: float = setting(
        "FITYARD_ACK_WAIT_SECONDS",
        8.0,
        "how long JetStream waits for a job's ack or heartbeat before another trainer gets it, seconds",
        SERVICES,
    )
    heartbeat_seconds: float = setting(
        "FITYARD_HEARTBEAT_SECONDS",
        2.0,
        "how often a trainer says a job is alive, seconds; at most half of, and by default a quarter of, FITYARD_ACK_WAIT_SECONDS",
        (TRAINER,),
        default_from=_quarter_of_the_ack_deadline,
        check=_heartbeat_within_the_deadline,
    )
    # Handing a job back on shutdown and waiting for a core do not count.
    max_attempts: int = setting(
        "FITYARD_MAX_ATTEMPTS",
        3,
        "starts of a job that may end with its trainer or worker dying before the job FAILS",
        (SCHEDULER, TRAINER),
    )
    max_classes: int = setting(
        "FITYARD_MAX_CLASSES",
        1000,
        "a classifier with more classes than this is refused before fitting",
        (TRAINER,),
    )
    max_job_timeout_seconds: float = setting(
        "FITYARD_MAX_JOB_TIMEOUT_SECONDS",
        7 * 24 * 3600.0,
        "the longest run a job may be given, seconds",
        (SCHEDULER,),
    )
    reconcile_seconds: float = setting(
        "FITYARD_RECONCILE_SECONDS",
        10.0,
        "how often the scheduler re-publishes queued jobs missing from the JOBS stream, seconds",
        (SCHEDULER,),
    )
    small_job_cells: float = setting(
        "FITYARD_SMALL_JOB_CELLS",
        20e6,
        "a job of at most this work (rows x columns x rounds) goes on the small lane",
        (SCHEDULER,),
    )
    # A GPU trainer would serve its own lane.
    trainer_lanes: str = setting(
        "FITYARD_TRAINER_LANES",
        "",
        "the lanes a trainer takes jobs from, in order, comma-separated; empty: every lane, small first",
        (TRAINER,),
        parse=_trainer_lanes,
    )
    # services/common/api_keys.py. Without one the gateway runs open, every
    # caller the default tenant, which it allows only when it listens on loopback.
    api_keys_file: str = setting(
        "FITYARD_API_KEYS_FILE",
        "",
        "the API keys file (TENANT SHA256 lines); empty: the gateway runs open",
        (GATEWAY, PREDICTOR),
    )
    # services/common/internal_auth.py. Without one the scheduler runs open,
    # which it allows only when it listens on loopback.
    internal_token: str = setting(
        "FITYARD_INTERNAL_TOKEN",
        "",
        "the shared secret the gateway proves itself with to the scheduler; empty: none",
        (GATEWAY, SCHEDULER),
        secret=True,
    )
    # Empty: plaintext (behind a TLS-terminating proxy or ingress, or on loopback).
    tls_cert_file: str = setting(
        "FITYARD_TLS_CERT_FILE",
        "",
        "the certificate (PEM, with its chain) to serve TLS with; empty: plaintext",
        (GATEWAY, PREDICTOR),
    )
    tls_key_file: str = setting(
        "FITYARD_TLS_KEY_FILE", "", "the key of FITYARD_TLS_CERT_FILE", (GATEWAY, PREDICTOR)
    )
    tls_client_ca_file: str = setting(
        "FITYARD_TLS_CLIENT_CA_FILE",
        "",
        "require client certificates signed by this CA (mTLS); empty: none",
        (GATEWAY, PREDICTOR),
    )
    # Per-tenant quotas: over one, RESOURCE_EXHAUSTED naming the limit, the
    # use and how to free some.
    quota_active_jobs: int = setting(
        "FITYARD_QUOTA_ACTIVE_JOBS",
        10_000,
        "per tenant: jobs QUEUED or RUNNING at once",
        (SCHEDULER,),
    )
    quota_stored_bytes: int = setting(
        "FITYARD_QUOTA_STORED_BYTES",
        1024**4,
        "per tenant: bytes of its stored datasets",
        (GATEWAY,),
    )
    quota_dataset_rows: int = setting(
        "FITYARD_QUOTA_DATASET_ROWS", 1_000_000_000, "the rows of one dataset", (GATEWAY,)
    )
    quota_dataset_columns: int = setting(
        "FITYARD_QUOTA_DATASET_COLUMNS", 100_000, "the columns of one dataset", (GATEWAY,)
    )
    predictor_listen: str = setting(
        "FITYARD_PREDICTOR_LISTEN",
        "0.0.0.0:50053",
        "where a predictor serves fityard.v1.PredictionService, host:port",
        (PREDICTOR,),
    )
    predictor_cache_bytes: int = setting(
        "FITYARD_PREDICTOR_CACHE_BYTES",
        1024**3,
        "bytes of models one predictor keeps in memory, least recently used dropped first",
        (PREDICTOR,),
    )
    predict_max_rows: int = setting(
        "FITYARD_PREDICT_MAX_ROWS",
        10_000,
        "the most rows one prediction request may hold",
        (PREDICTOR,),
    )
    # e.g. dns:///predictor:50053: every address it resolves to is used in turn.
    predictor_address: str = setting(
        "FITYARD_PREDICTOR_ADDRESS",
        "127.0.0.1:50053",
        "the predictor pool the gateway forwards PredictionService calls to (a gRPC target)",
        (GATEWAY,),
    )
    # `fityard up` sets it: its predictors listen on this machine's loopback.
    public_predict_address: str = setting(
        "FITYARD_PUBLIC_PREDICT_ADDRESS",
        "",
        "where callers can reach the predictor pool themselves (a gRPC target): the gateway "
        "names it on each Predict it forwards, and the SDK sends its next ones there, one hop "
        "less; empty: callers stay on the gateway",
        (GATEWAY,),
    )

    @classmethod
    def from_env(cls) -> Config:
        return read(cls)


# Every setting, by attribute path ("storage.root") and by variable.
SCHEMA = Schema(Config)
