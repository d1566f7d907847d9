"""Shared fixtures: real stacks (nats-server, scheduler, gateway, trainers as
processes on free loopback ports) on both store backends, and seed data.

Two tiers (tests/support/tiers.py): `pytest -m "not stack"` runs the unit
tier, in seconds; a test that starts a stack must be marked `stack`
(`pytestmark = pytest.mark.stack` for a module), and one that is not fails
when it asks for these stack fixtures or starts a stack some other way."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from threadpoolctl import threadpool_limits

from ml.data import make_data
from services.common.config import StorageConfig
from services.common.storage import open_store
from services.embedded import EmbeddedStack, free_port, nats_server_binary
from tests.support import tiers
from tests.support.s3server import MotoS3Server, s3_env, storage_config_for


def pytest_configure(config):
    tiers.install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with tiers.running(item):
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    tiers.check_fixtures(item)


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_in_process_fits(request):
    """Fits in the test process (the unit tier's ml tests) use one thread:
    tiny data gains nothing from more, and OpenMP threads that spin-wait for
    each other are slowed tenfold when other processes take the cores.
    Stacks are not affected: their fits run in processes of their own."""
    if request.node.get_closest_marker("stack") is not None:
        yield
        return
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def nats_url(tmp_path):
    """A bare nats-server with JetStream on a free loopback port, for tests
    of one service's part against the real server (no fityard processes)."""
    port = free_port()
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server, standing in for MinIO (no MinIO binary here)."""
    with MotoS3Server() as server:
        yield server


def _start_stack(
    data_dir, backend: str, config: StorageConfig, env: dict[str, str]
) -> EmbeddedStack:
    running = EmbeddedStack(data_dir, trainers=2, predictors=1, storage=backend, env=env).start()
    running.store = open_store(config)
    running.backend = backend
    return running


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """A running stack on the local-directory store."""
    data_dir = tmp_path_factory.mktemp("stack-local")
    running = _start_stack(
        data_dir, "local", StorageConfig(backend="local", root=data_dir / "objects"), {}
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def s3_stack(tmp_path_factory, s3_server):
    """A running stack on the S3 store (moto's server in MinIO's place)."""
    config = storage_config_for(s3_server.endpoint, f"fityard-{uuid.uuid4().hex[:8]}")
    running = _start_stack(tmp_path_factory.mktemp("stack-s3"), "s3", config, s3_env(config))
    yield running
    running.stop()


@pytest.fixture(scope="session", params=["local", "s3"])
def stack(request):
    """The same test on both store backends: a running stack with `.address`,
    `.store` (to inspect what is stored) and `.backend`."""
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture(scope="session")
def seed_files(tmp_path_factory):
    """The seed's four files, small enough for quick fits, and a training
    file that passes admission but fails in the trainer (one class in y:
    only the values show it, so it is refused after a trainer read it)."""
    import pandas as pd

    directory = tmp_path_factory.mktemp("seed")
    files = make_data(directory, rows=3000)
    one_class = pd.read_parquet(files["train"]).assign(y=0)
    one_class.to_parquet(directory / "one_class_train.parquet", index=False)
    return {
        "train": files["train"],
        "test": files["test"],
        "bad_train": files["bad_train"],
        "bad_test": files["bad_test"],
        "one_class_train": directory / "one_class_train.parquet",
    }
