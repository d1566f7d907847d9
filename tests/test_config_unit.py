"""Settings from FITYARD_* environment variables (services/common/config.py):
no settings give a working single machine, every variable reaches its
setting, and a bad value stops the service with a line naming the variable
(not a traceback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.common.config import Config, StorageConfig
from tests.support.settings import service_settings


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    """Each test starts from an environment with no FITYARD_* variable."""
    for name in list(os.environ):
        if name.startswith("FITYARD_"):
            monkeypatch.delenv(name)


def refusal(monkeypatch, **env: str) -> str:
    """The message the service exits with under `env`."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as raised:
        Config.from_env()
    return str(raised.value)


def test_no_settings_give_the_documented_defaults():
    # The defaults are written twice (the dataclass and from_env): they agree.
    assert Config.from_env() == Config()
    assert StorageConfig.from_env() == StorageConfig()


@pytest.mark.parametrize(
    "name, value, setting, expected",
    [
        ("FITYARD_NATS_URL", "nats://bus:4222", "nats_url", "nats://bus:4222"),
        ("FITYARD_SWEEP_SECONDS", "30", "sweep_seconds", 30.0),
        ("FITYARD_STALE_UPLOAD_SECONDS", "0.5", "stale_upload_seconds", 0.5),
        ("FITYARD_SCRATCH_DIR", "/scratch", "scratch_dir", "/scratch"),
        ("FITYARD_GATEWAY_LISTEN", "0.0.0.0:1", "gateway_listen", "0.0.0.0:1"),
        ("FITYARD_SCHEDULER_ADDRESS", "sched:2", "scheduler_address", "sched:2"),
        ("FITYARD_MAX_UPLOAD_BYTES", "1024", "max_upload_bytes", 1024),
        ("FITYARD_MAX_TRANSFERS", "7", "max_transfers", 7),
        ("FITYARD_TRANSFER_IDLE_SECONDS", "2.5", "transfer_idle_seconds", 2.5),
        ("FITYARD_SCHEDULER_LISTEN", "0.0.0.0:3", "scheduler_listen", "0.0.0.0:3"),
        ("FITYARD_TRAINER_ID", "t-1", "trainer_id", "t-1"),
        ("FITYARD_TRAINER_THREADS", "2", "trainer_threads", 2),
        ("FITYARD_CORE_LEASES_DIR", "/leases", "core_leases_dir", "/leases"),
        ("FITYARD_ACK_WAIT_SECONDS", "20", "ack_wait_seconds", 20.0),
        ("FITYARD_HEARTBEAT_SECONDS", "1", "heartbeat_seconds", 1.0),
        ("FITYARD_MAX_ATTEMPTS", "5", "max_attempts", 5),
        ("FITYARD_MAX_CLASSES", "10", "max_classes", 10),
        ("FITYARD_MAX_JOB_TIMEOUT_SECONDS", "3600", "max_job_timeout_seconds", 3600.0),
        ("FITYARD_RECONCILE_SECONDS", "1", "reconcile_seconds", 1.0),
    ],
)
def test_each_variable_sets_its_setting(monkeypatch, name, value, setting, expected):
    monkeypatch.setenv(name, value)
    assert getattr(Config.from_env(), setting) == expected


@pytest.mark.parametrize(
    "name, value, setting, expected",
    [
        ("FITYARD_STORAGE", "s3", "backend", "s3"),
        ("FITYARD_STORAGE_DIR", "/data/objects", "root", Path("/data/objects")),
        ("FITYARD_S3_ENDPOINT", "minio:9000", "endpoint", "minio:9000"),
        ("FITYARD_S3_ACCESS_KEY", "ak", "access_key", "ak"),
        ("FITYARD_S3_SECRET_KEY", "sk", "secret_key", "sk"),
        ("FITYARD_S3_BUCKET", "b", "bucket", "b"),
        ("FITYARD_S3_REGION", "eu-west-1", "region", "eu-west-1"),
        ("FITYARD_S3_PART_SIZE", "6291456", "part_size", 6291456),
        ("FITYARD_S3_SECURE", "true", "secure", True),
    ],
)
def test_each_storage_variable_sets_its_setting(monkeypatch, name, value, setting, expected):
    monkeypatch.setenv("FITYARD_S3_ACCESS_KEY", "ak")
    monkeypatch.setenv("FITYARD_S3_SECRET_KEY", "sk")
    monkeypatch.setenv(name, value)
    assert getattr(Config.from_env().storage, setting) == expected


def test_the_s3_store_has_no_default_credentials(monkeypatch):
    """No well-known pair (MinIO's minioadmin) stands in for missing keys."""
    monkeypatch.setenv("FITYARD_STORAGE", "s3")
    monkeypatch.delenv("FITYARD_S3_ACCESS_KEY", raising=False)
    monkeypatch.delenv("FITYARD_S3_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit, match="needs FITYARD_S3_ACCESS_KEY and FITYARD_S3_SECRET_KEY"):
        Config.from_env()
    assert StorageConfig().access_key == StorageConfig().secret_key == ""


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", " on "])
def test_secure_is_on_for_the_usual_words(monkeypatch, value):
    monkeypatch.setenv("FITYARD_S3_SECURE", value)
    assert StorageConfig.from_env().secure is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off"])
def test_secure_is_off_for_the_usual_words(monkeypatch, value):
    monkeypatch.setenv("FITYARD_S3_SECURE", value)
    assert StorageConfig.from_env().secure is False


def test_a_yes_no_setting_that_is_neither_names_the_variable(monkeypatch):
    monkeypatch.setenv("FITYARD_S3_SECURE", "ture")  # a typo must not quietly mean "off"
    with pytest.raises(SystemExit, match="FITYARD_S3_SECURE='ture' is neither true nor false"):
        StorageConfig.from_env()


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("FITYARD_MAX_ATTEMPTS", "-1", "must be at least 1"),
        ("FITYARD_MAX_TRANSFERS", "0", "must be at least 1"),
        ("FITYARD_TRAINER_THREADS", "-2", "must be at least 0"),
    ],
)
def test_a_count_below_its_least_names_the_variable(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=f"{name}='{value}' {says}"):
        Config.from_env()


def test_an_empty_variable_means_the_default(monkeypatch):
    """Every setting: docker-compose.yml passes each as `${NAME:-}`, empty
    unless .env sets it, and the services must then keep their defaults."""
    for name in service_settings():
        monkeypatch.setenv(name, "")
    assert Config.from_env() == Config()


@pytest.mark.parametrize(
    "name, value",
    [
        ("FITYARD_MAX_TRANSFERS", "lots"),
        ("FITYARD_MAX_UPLOAD_BYTES", "1.5"),
        ("FITYARD_MAX_ATTEMPTS", "three"),
        ("FITYARD_TRAINER_THREADS", "two"),
        ("FITYARD_S3_PART_SIZE", "8MiB"),
    ],
)
def test_a_whole_number_setting_that_is_not_one_names_the_variable(monkeypatch, name, value):
    assert refusal(monkeypatch, **{name: value}) == f"{name}={value!r} is not a whole number"


@pytest.mark.parametrize(
    "name",
    [
        "FITYARD_SWEEP_SECONDS",
        "FITYARD_STALE_UPLOAD_SECONDS",
        "FITYARD_TRANSFER_IDLE_SECONDS",
        "FITYARD_ACK_WAIT_SECONDS",
        "FITYARD_HEARTBEAT_SECONDS",
        "FITYARD_MAX_JOB_TIMEOUT_SECONDS",
        "FITYARD_RECONCILE_SECONDS",
    ],
)
def test_a_seconds_setting_that_is_not_a_number_names_the_variable(monkeypatch, name):
    assert refusal(monkeypatch, **{name: "soon"}) == f"{name}='soon' is not a number"


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_seconds_setting_must_be_greater_than_zero(monkeypatch, value):
    message = refusal(monkeypatch, FITYARD_SWEEP_SECONDS=value)
    assert message == f"FITYARD_SWEEP_SECONDS={value!r} must be greater than 0"


def test_the_heartbeat_follows_the_ack_deadline(monkeypatch):
    monkeypatch.setenv("FITYARD_ACK_WAIT_SECONDS", "20")
    assert Config.from_env().heartbeat_seconds == 5.0  # a quarter: three may be late


def test_a_heartbeat_too_slow_for_the_deadline_is_refused_naming_both(monkeypatch):
    message = refusal(monkeypatch, FITYARD_ACK_WAIT_SECONDS="4", FITYARD_HEARTBEAT_SECONDS="3")
    assert message.startswith(
        "FITYARD_HEARTBEAT_SECONDS=3 must be at most half of FITYARD_ACK_WAIT_SECONDS=4"
    )
    assert "redelivered" in message


def test_a_heartbeat_of_exactly_half_the_deadline_is_allowed(monkeypatch):
    monkeypatch.setenv("FITYARD_ACK_WAIT_SECONDS", "4")
    monkeypatch.setenv("FITYARD_HEARTBEAT_SECONDS", "2")
    assert Config.from_env().heartbeat_seconds == 2.0


@pytest.mark.parametrize(
    "url, shown",
    [
        ("nats://s3cr3t@127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://user:pa@ss@nats:4222", "nats://nats:4222"),
        ("nats://nats:4222", "nats://nats:4222"),
        ("tok@host:4222", "host:4222"),
    ],
)
def test_a_nats_url_is_shown_without_its_credentials(url, shown):
    from services.common.bus import redacted

    assert redacted(url) == shown
