"""Configuration from environment variables.

Every service reads its settings here, once, at start-up. The defaults make a
single machine work with no settings at all (a nats-server on localhost, a local
object-store directory); docker compose and Kubernetes set the variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .cpu_limit import cpu_limit

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


def _env(name: str, default: str) -> str:
    """The variable, or `default` when it is unset or empty: every reader
    here treats empty as unset, so a deployment can list a setting with an
    empty value (docker compose's `${NAME:-}`) and keep the default."""
    return os.environ.get(name) or default


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SystemExit(f"{name}={raw!r} must be at least {minimum}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise SystemExit(f"{name}={raw!r} must be greater than 0")
    return value


def _heartbeat(ack_wait: float) -> float:
    """FITYARD_HEARTBEAT_SECONDS, or a quarter of the ack deadline. Tied to
    the deadline so that changing one cannot make healthy jobs redeliver."""
    heartbeat = _env_float("FITYARD_HEARTBEAT_SECONDS", ack_wait / 4)
    if heartbeat > ack_wait / 2:
        raise SystemExit(
            f"FITYARD_HEARTBEAT_SECONDS={heartbeat:g} must be at most half of FITYARD_ACK_WAIT_SECONDS={ack_wait:g}, "
            "or a healthy job is redelivered when one heartbeat is late"
        )
    return heartbeat


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    word = raw.strip().lower()
    if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise SystemExit(f"{name}={raw!r} is neither true nor false (write true or false)")
    return word in ("1", "true", "yes", "on")


def _env_choice(name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().upper() if upper else raw.strip().lower()
    if word not in choices:
        raise SystemExit(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return word


def _trainer_lanes() -> str:
    """FITYARD_TRAINER_LANES, checked: known lane names, comma-separated."""
    raw = _env("FITYARD_TRAINER_LANES", "")
    lanes = [lane.strip() for lane in raw.split(",") if lane.strip()]
    unknown = [lane for lane in lanes if lane not in LANES]
    if unknown:
        raise SystemExit(
            f"FITYARD_TRAINER_LANES={raw!r} names unknown lane(s) {', '.join(unknown)}: the lanes are {', '.join(LANES)}"
        )
    return ",".join(lanes)


# What services/common/logs.py accepts (kept here so config imports nothing).
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class StorageConfig:
    """Where objects live: `local` (a directory) or `s3` (MinIO or any S3)."""

    backend: str = "local"
    # local backend
    root: Path = Path(".fityard/objects")
    # s3 backend
    endpoint: str = "localhost:9000"
    # No default: MinIO's well-known minioadmin pair would let a store
    # reached by mistake accept fityard's data (from_env requires them).
    access_key: str = ""
    secret_key: str = ""
    bucket: str = "fityard"
    secure: bool = False
    region: str = "us-east-1"
    # multipart part size for S3 uploads (S3's minimum is 5 MiB)
    part_size: int = 8 * 1024 * 1024

    @classmethod
    def from_env(cls) -> StorageConfig:
        backend = _env("FITYARD_STORAGE", "local")
        access_key = _env("FITYARD_S3_ACCESS_KEY", "")
        secret_key = _env("FITYARD_S3_SECRET_KEY", "")
        if backend == "s3" and not (access_key and secret_key):
            raise SystemExit(
                "FITYARD_STORAGE=s3 needs FITYARD_S3_ACCESS_KEY and FITYARD_S3_SECRET_KEY "
                "(from the environment or a secret; there is no default)"
            )
        return cls(
            backend=backend,
            root=Path(_env("FITYARD_STORAGE_DIR", ".fityard/objects")),
            endpoint=_env("FITYARD_S3_ENDPOINT", "localhost:9000"),
            access_key=access_key,
            secret_key=secret_key,
            bucket=_env("FITYARD_S3_BUCKET", "fityard"),
            secure=_env_bool("FITYARD_S3_SECURE", False),
            region=_env("FITYARD_S3_REGION", "us-east-1"),
            part_size=_env_int("FITYARD_S3_PART_SIZE", 8 * 1024 * 1024),
        )


@dataclass(frozen=True)
class Config:
    """Settings shared by all services; each service uses the part it needs."""

    nats_url: str = "nats://127.0.0.1:4222"
    storage: StorageConfig = field(default_factory=StorageConfig)
    # logs (services/common/logs.py): json or text; empty: json unless
    # stderr is a terminal
    log_format: str = ""
    log_level: str = "INFO"
    # Where a service serves Prometheus metrics (services/common/metrics.py),
    # host:port; empty: nowhere.
    metrics_listen: str = ""
    # housekeeping (services/common/scratch.py: sweep_periodically): how often
    # to sweep, and after how long without activity an unfinished upload
    # counts as abandoned (see ObjectStore.sweep_incomplete)
    sweep_seconds: float = 3600.0
    stale_upload_seconds: float = 6 * 3600.0
    # root of the per-process scratch directories; empty: <tempdir>/fityard-scratch-<uid>
    scratch_dir: str = ""
    # gateway
    gateway_listen: str = "0.0.0.0:50051"
    scheduler_address: str = "127.0.0.1:50052"
    max_upload_bytes: int = 64 * 1024**3
    # Uploads and downloads served at once (each has a thread of its own for
    # the store); one more is refused with RESOURCE_EXHAUSTED, to retry.
    max_transfers: int = 64
    # An upload whose client sends nothing, or a download whose client reads
    # nothing, for this long is ended (nothing of an upload is kept).
    transfer_idle_seconds: float = 60.0
    # scheduler
    scheduler_listen: str = "0.0.0.0:50052"
    # trainer
    trainer_id: str = ""
    trainer_threads: int = 0  # most threads one job may use; 0: every usable core
    # Where a trainer serves grpc.health.v1 (it has no other gRPC service);
    # empty: nowhere (its health is then in its log lines).
    trainer_health_listen: str = ""
    # Directory of per-core lock files shared by the trainers of one machine
    # (see services/trainer/cores.py); empty: this trainer owns its cores.
    core_leases_dir: str = ""
    # The token nats-server requires (its `--auth`/authorization token);
    # empty: none. Kept out of FITYARD_NATS_URL so that no log line of the
    # URL shows it.
    nats_token: str = ""
    # Copies JetStream keeps of each stream and KV bucket fityard creates:
    # 1 on one nats-server, 3 on a 3-node cluster (the Helm chart's), so the
    # loss of one NATS node loses no job, event or record. Applied when a
    # stream or bucket is created (a stream's also when it is converged).
    nats_replicas: int = 1
    # How long JetStream waits for an ack or heartbeat of a delivered job
    # before giving it to another trainer: the time to notice a dead trainer.
    ack_wait_seconds: float = 8.0
    # How often a trainer tells JetStream a job is still alive. A quarter of
    # the ack deadline, so three heartbeats can be late before a healthy
    # job is redelivered.
    heartbeat_seconds: float = 2.0
    # Starts of a job that may end with its trainer or worker dying (killed,
    # out of memory) before the job FAILS saying so. Handing a job back on
    # shutdown and waiting for a core do not count.
    max_attempts: int = 3
    # A classifier with more classes than this is refused before fitting.
    max_classes: int = 1000
    # The longest run a job may be given (its derived or requested limit).
    max_job_timeout_seconds: float = 7 * 24 * 3600.0
    # How often the scheduler re-publishes queued jobs whose message is
    # missing from the JOBS stream (and once at start).
    reconcile_seconds: float = 10.0
    # A job whose work (rows x columns x boosting rounds; 1 round for a
    # predict) is at most this goes on the small lane.
    small_job_cells: float = 20e6
    # The API keys (services/common/api_keys.py) of the gateway and the predictors: a file of
    # `TENANT SHA256` lines. Empty: the gateway runs open, every caller the
    # default tenant, which it allows only when it listens on loopback.
    api_keys_file: str = ""
    # The gateway serves TLS with this certificate (PEM, with its chain) and
    # key; with a client CA, it requires client certificates signed by it
    # (mTLS). Empty: plaintext (behind a TLS-terminating proxy or ingress,
    # or on loopback).
    # The shared secret the gateway proves itself with to the scheduler
    # (services/common/internal_auth.py). Empty: the scheduler runs open,
    # which it allows only when it listens on loopback.
    internal_token: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # Per-tenant quotas (RESOURCE_EXHAUSTED naming the limit, the use and how
    # to free some): jobs QUEUED or RUNNING at once (scheduler), the bytes of
    # its stored datasets, and the rows and columns of one dataset (gateway).
    quota_active_jobs: int = 10_000
    quota_stored_bytes: int = 1024**4
    quota_dataset_rows: int = 1_000_000_000
    quota_dataset_columns: int = 100_000
    # The lanes a trainer takes jobs from, in order (comma-separated); empty:
    # every lane, small first. A GPU trainer would serve its own lane.
    trainer_lanes: str = ""
    # predictor (services/predictor): where it serves fityard.v1.PredictionService;
    # the bytes of models one predictor keeps in memory (least recently used
    # dropped first); the most rows one request may hold.
    predictor_listen: str = "0.0.0.0:50053"
    predictor_cache_bytes: int = 1024**3
    predict_max_rows: int = 10_000
    # gateway: the predictor pool it forwards PredictionService calls to (a
    # gRPC target, e.g. dns:///predictor:50053: every address it resolves
    # to is used in turn).
    predictor_address: str = "127.0.0.1:50053"

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            nats_url=_env("FITYARD_NATS_URL", "nats://127.0.0.1:4222"),
            storage=StorageConfig.from_env(),
            log_format=_env_choice("FITYARD_LOG_FORMAT", "", LOG_FORMATS),
            log_level=_env_choice("FITYARD_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            metrics_listen=_env("FITYARD_METRICS_LISTEN", ""),
            sweep_seconds=_env_float("FITYARD_SWEEP_SECONDS", 3600.0),
            stale_upload_seconds=_env_float("FITYARD_STALE_UPLOAD_SECONDS", 6 * 3600.0),
            scratch_dir=_env("FITYARD_SCRATCH_DIR", ""),
            gateway_listen=_env("FITYARD_GATEWAY_LISTEN", "0.0.0.0:50051"),
            scheduler_address=_env("FITYARD_SCHEDULER_ADDRESS", "127.0.0.1:50052"),
            max_upload_bytes=_env_int("FITYARD_MAX_UPLOAD_BYTES", 64 * 1024**3),
            max_transfers=_env_int("FITYARD_MAX_TRANSFERS", 64),
            transfer_idle_seconds=_env_float("FITYARD_TRANSFER_IDLE_SECONDS", 60.0),
            scheduler_listen=_env("FITYARD_SCHEDULER_LISTEN", "0.0.0.0:50052"),
            trainer_id=_env("FITYARD_TRAINER_ID", ""),
            trainer_threads=_env_int("FITYARD_TRAINER_THREADS", 0, minimum=0),
            trainer_health_listen=_env("FITYARD_TRAINER_HEALTH_LISTEN", ""),
            core_leases_dir=_env("FITYARD_CORE_LEASES_DIR", ""),
            nats_replicas=_env_int("FITYARD_NATS_REPLICAS", 1),
            nats_token=_env("FITYARD_NATS_TOKEN", ""),
            ack_wait_seconds=(ack_wait := _env_float("FITYARD_ACK_WAIT_SECONDS", 8.0)),
            heartbeat_seconds=_heartbeat(ack_wait),
            max_attempts=_env_int("FITYARD_MAX_ATTEMPTS", 3),
            max_classes=_env_int("FITYARD_MAX_CLASSES", 1000),
            max_job_timeout_seconds=_env_float("FITYARD_MAX_JOB_TIMEOUT_SECONDS", 7 * 24 * 3600.0),
            reconcile_seconds=_env_float("FITYARD_RECONCILE_SECONDS", 10.0),
            small_job_cells=_env_float("FITYARD_SMALL_JOB_CELLS", 20e6),
            trainer_lanes=_trainer_lanes(),
            api_keys_file=_env("FITYARD_API_KEYS_FILE", ""),
            internal_token=_env("FITYARD_INTERNAL_TOKEN", ""),
            tls_cert_file=_env("FITYARD_TLS_CERT_FILE", ""),
            tls_key_file=_env("FITYARD_TLS_KEY_FILE", ""),
            tls_client_ca_file=_env("FITYARD_TLS_CLIENT_CA_FILE", ""),
            quota_active_jobs=_env_int("FITYARD_QUOTA_ACTIVE_JOBS", 10_000),
            quota_stored_bytes=_env_int("FITYARD_QUOTA_STORED_BYTES", 1024**4),
            quota_dataset_rows=_env_int("FITYARD_QUOTA_DATASET_ROWS", 1_000_000_000),
            quota_dataset_columns=_env_int("FITYARD_QUOTA_DATASET_COLUMNS", 100_000),
            predictor_listen=_env("FITYARD_PREDICTOR_LISTEN", "0.0.0.0:50053"),
            predictor_cache_bytes=_env_int("FITYARD_PREDICTOR_CACHE_BYTES", 1024**3),
            predict_max_rows=_env_int("FITYARD_PREDICT_MAX_ROWS", 10_000),
            predictor_address=_env("FITYARD_PREDICTOR_ADDRESS", "127.0.0.1:50053"),
        )
