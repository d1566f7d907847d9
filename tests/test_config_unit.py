"""Settings from FITYARD_* environment variables (services/common/config.py):
no settings give a working single machine, every variable reaches its
setting, a bad value stops the service with a line naming the variable
(not a traceback), and the schema is the one list of them: each declared
once, documented in README.md, and every FITYARD_ name the code uses is one
of them or a name defined elsewhere once (tests/support/settings.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from services.common.config import SCHEMA, Config, StorageConfig
from services.common.settings import SERVICES
from tests.support.settings import (
    COMPOSE_ONLY,
    TEST_KNOBS,
    client_settings,
    names_in,
    other_names,
    service_settings,
)
from tools import settings_table

ROOT = Path(__file__).resolve().parents[1]


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
    # Derived defaults (the heartbeat's) agree with the dataclass's too.
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


def test_the_schema_declares_each_setting_once_with_a_doc_and_its_readers():
    assert len(SCHEMA.settings) == len(SCHEMA.by_env) == len(SCHEMA.by_attr)
    for declared in SCHEMA.settings:
        assert declared.env.startswith("FITYARD_") and declared.env.isupper(), declared.env
        assert declared.doc and "\n" not in declared.doc, declared.env
        assert declared.readers and set(declared.readers) <= set(SERVICES), declared.env
    assert SCHEMA.env("storage.root") == "FITYARD_STORAGE_DIR"


# A value other than the default for each setting that needs one of its own
# (a lane, a choice, s3 with its keys); the heartbeat within the deadline.
SAMPLES = {
    "storage.backend": "s3",
    "trainer_lanes": "small",
    "log_format": "text",
    "event_loop": "asyncio",
    "log_level": "DEBUG",
    "ack_wait_seconds": 16.0,
    "heartbeat_seconds": 4.0,
}


def _sample(declared):
    if declared.attr in SAMPLES:
        return SAMPLES[declared.attr]
    default = declared.default
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        return default * 2 + 1
    if isinstance(default, Path):
        return Path("/elsewhere")
    return f"{declared.attr}-value"


def _value(config, attr):
    for part in attr.split("."):
        config = getattr(config, part)
    return config


def test_every_setting_reads_back_what_the_schema_renders(monkeypatch):
    """What `fityard up` relies on: SCHEMA.to_env gives variables that the
    services read back as the values it was given, for every setting."""
    samples = {declared.attr: _sample(declared) for declared in SCHEMA.settings}
    for name, value in SCHEMA.to_env(samples).items():
        monkeypatch.setenv(name, value)
    config = Config.from_env()
    for attr, value in samples.items():
        assert _value(config, attr) == value, attr
        assert value != _value(Config(), attr), attr  # the sample proves something


def test_an_unknown_setting_is_named_with_the_known_ones():
    with pytest.raises(KeyError, match="no setting 'nats_uri'; settings: nats_url, "):
        SCHEMA.to_env({"nats_uri": "nats://x:1"})


def test_the_readme_table_is_the_schemas():
    readme = (ROOT / "README.md").read_text()
    assert settings_table.with_table(readme) == readme, "run: python tools/settings_table.py"
    for declared in SCHEMA.settings:
        assert f"| `{declared.env}` |" in readme, declared.env


def test_the_readme_names_the_clients_variables():
    readme = (ROOT / "README.md").read_text()
    for name in client_settings():
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("folder", ["services", "fityard", "tools", "bench", "tests"])
def test_every_fityard_name_in_the_code_is_a_setting_or_defined_once(folder):
    """A setting renamed in the schema and not in a message, or a typo,
    names a variable that nothing reads: it fails here (in a test's
    environment, a typo would make the test test nothing)."""
    known = service_settings() | other_names()
    if folder == "tests":
        known |= {*COMPOSE_ONLY, *TEST_KNOBS}
    unknown = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "_pb2" not in path.name and (names := names_in(path.read_text()) - known):
            unknown[str(path.relative_to(ROOT))] = sorted(names)
    assert not unknown


@pytest.mark.parametrize(("setting", "loop_module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_services_run_on_the_event_loop_fityard_event_loop_names(monkeypatch, setting, loop_module):
    from services.common import runtime

    monkeypatch.setenv("FITYARD_EVENT_LOOP", setting)

    async def which_loop() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert runtime.run(which_loop()) == loop_module


def test_every_service_starts_through_the_shared_runner():
    """So FITYARD_EVENT_LOOP reaches each of them (not a loop of its own)."""
    for service in ("gateway", "scheduler", "trainer", "predictor"):
        main = (ROOT / "services" / service / "__main__.py").read_text()
        assert "asyncio.run(" not in main and "run(main())" in main, service
