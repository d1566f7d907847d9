"""The stack as docker compose deploys it, without a container engine: the
gateway, the scheduler, a predictor and two trainers started as separate
processes with exactly the command (the image's ENTRYPOINT + the service's
command) and environment compose gives their containers, host names mapped
to loopback: a local nats-server for `nats`, moto's S3 server for `minio`,
an OTLP receiver for `otel-collector`, the predictor's port for `predictor`.
The seed workflow then runs through them, online predictions through the
gateway and straight to the predictor, and their traces and metrics arrive
where compose's collector and Prometheus would find them."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from fityard import Client, InvalidArgument, Unauthenticated
from fityard.traces import read_trace
from services import span_store
from services.common.api_keys import mint
from services.embedded import free_port, nats_server_binary, wait_healthy
from tests.support import compose as c
from tests.support.jobs import nats_refuses_without_a_token
from tests.support.s3server import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.stack

# The compose secret holding the gateway's API keys.
SECRET = "api-keys"
RUN = [
    ("scheduler", "scheduler"),
    ("gateway", "gateway"),
    ("predictor", "predictor"),
    ("trainer", "trainer-a"),
    ("trainer", "trainer-b"),
]
LISTEN_SETTINGS = {
    "FITYARD_GATEWAY_LISTEN",
    "FITYARD_SCHEDULER_LISTEN",
    "FITYARD_TRAINER_HEALTH_LISTEN",
    "FITYARD_PREDICTOR_LISTEN",
    "FITYARD_METRICS_LISTEN",
}


class Deployment:
    """The processes, their loopback ports and their logs."""

    def __init__(self, tmp: Path, s3_endpoint: str):
        self.tmp = tmp
        self.compose = c.load()
        self.nats_port, self.scheduler_port, self.predictor_port, self.receiver_port = (
            free_port() for _ in range(4)
        )
        # what each container's host:port is on loopback
        self.hosts = {
            "nats:4222": f"127.0.0.1:{self.nats_port}",
            "minio:9000": s3_endpoint,
            "scheduler:50052": f"127.0.0.1:{self.scheduler_port}",
            "predictor:50053": f"127.0.0.1:{self.predictor_port}",
            "otel-collector:4317": f"127.0.0.1:{self.receiver_port}",
        }
        # the listen settings of the services others are sent to
        self.known_ports = {
            "FITYARD_SCHEDULER_LISTEN": self.scheduler_port,
            "FITYARD_PREDICTOR_LISTEN": self.predictor_port,
        }
        self.dotenv = {
            **c.dotenv(),
            "FITYARD_S3_ACCESS_KEY": ACCESS_KEY,
            "FITYARD_S3_SECRET_KEY": SECRET_KEY,
            "FITYARD_S3_BUCKET": "fityard-compose",
            "GRAFANA_ADMIN_PASSWORD": "unused",
            "FITYARD_INTERNAL_TOKEN": "compose-internal-token",
            "FITYARD_NATS_TOKEN": "compose-nats-token",
        }
        # compose's api-keys secret, as the gateway finds it in its container
        self.keys_file = tmp / "api-keys"
        self.api_key = mint("compose", self.keys_file)
        self.ports: dict[str, dict[str, int]] = {}
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def environment(self, service: str, name: str) -> dict[str, str]:
        env = c.service_environment(self.compose, service, self.dotenv)
        self.ports[name] = {}
        for key, value in env.items():
            for container, local in self.hosts.items():
                value = value.replace(container, local)
            if key in LISTEN_SETTINGS and value:  # 0.0.0.0:<port> in its own container
                port = self.known_ports.get(key) or free_port()
                self.ports[name][key] = port
                value = f"127.0.0.1:{port}"
            value = value.replace("/tmp/", f"{self.tmp}/{name}-")  # its own /tmp (tmpfs)
            value = value.replace(f"/run/secrets/{SECRET}", str(self.keys_file))
            env[key] = value
        unmapped = {
            k: v
            for k, v in env.items()
            for host in self.compose["services"]
            if re.search(rf"(^|//){re.escape(host)}:\d", v)
        }
        assert not unmapped, f"compose names hosts this test does not map: {unmapped}"
        return env

    def start(self) -> None:
        nats = self.compose["services"]["nats"]
        # the repository's files it mounts, where they are here
        mounts = {
            volume.split(":")[1]: str(c.ROOT / volume.split(":")[0])
            for volume in nats["volumes"]
            if volume.startswith("./")
        }
        self._spawn(
            "nats",
            [nats_server_binary(), *nats["command"]],
            c.service_environment(self.compose, "nats", self.dotenv),
            replace={"/data": str(self.tmp / "nats"), "8222": str(free_port()), **mounts},
        )
        self.receiver = span_store.serve(self.tmp / "spans", f"127.0.0.1:{self.receiver_port}")
        image = c.entrypoint()
        assert image[:3] == ["python", "-m", "services"], image
        for service, name in RUN:
            argv = [sys.executable, *image[1:], *c.command(self.compose, service)]
            self._spawn(name, argv, self.environment(service, name))
            if service == "scheduler":
                assert wait_healthy(f"127.0.0.1:{self.scheduler_port}", 60), self.log("scheduler")

    def _spawn(self, name: str, argv: list[str], env: dict, replace: dict | None = None) -> None:
        if replace:
            argv = [replace.get(a, a) for a in argv] + [
                "--addr",
                "127.0.0.1",
                "--port",
                str(self.nats_port),
            ]
        log = open(self.tmp / f"{name}.log", "wb")
        base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(c.ROOT), "HOME": str(self.tmp)}
        self.procs.append(
            (
                name,
                subprocess.Popen(argv, env={**base, **env}, stdout=log, stderr=subprocess.STDOUT),
            )
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.receiver.stop(1)


@pytest.fixture
def deployment(tmp_path, s3_server):
    deployed = Deployment(tmp_path, s3_server.endpoint)
    try:
        deployed.start()
        yield deployed
    finally:
        deployed.stop()


def test_the_seed_workflow_runs_on_the_services_as_compose_starts_them(
    deployment, seed_files, tmp_path
):
    gateway = f"127.0.0.1:{deployment.ports['gateway']['FITYARD_GATEWAY_LISTEN']}"
    assert wait_healthy(gateway, 60), deployment.log("gateway")
    # compose's own health checks pass against each process
    for name, key in [
        ("gateway", "FITYARD_GATEWAY_LISTEN"),
        ("predictor", "FITYARD_PREDICTOR_LISTEN"),
        ("trainer-a", "FITYARD_TRAINER_HEALTH_LISTEN"),
        ("trainer-b", "FITYARD_TRAINER_HEALTH_LISTEN"),
    ]:
        service = name.split("-")[0]
        test = deployment.compose["services"][service]["healthcheck"]["test"]
        probe = [sys.executable, *test[2:5], f"127.0.0.1:{deployment.ports[name][key]}"]
        assert _eventually_ok(probe), f"{name}'s health check fails:\n{deployment.log(name)}"

    # NATS as compose runs it wants the token the services send
    assert nats_refuses_without_a_token(deployment.nats_port)
    # the gateway listens as compose has it, behind API keys
    with Client(gateway) as anonymous, pytest.raises(Unauthenticated):
        anonymous.jobs()
    assert deployment.compose["secrets"][SECRET]["file"].endswith("deploy/api-keys}")
    with Client(gateway, api_key=deployment.api_key) as client:
        train, test = client.upload(seed_files["train"]), client.upload(seed_files["test"])
        fit = client.fit(train, max_iter=5).wait(timeout=120)
        predict = client.predict(fit, test).wait(timeout=120)
        frame = client.download(predict)
        assert list(frame.columns) == ["y"] and len(frame) == test.rows
        with pytest.raises(InvalidArgument, match="no column 'y'"):  # at submission
            client.fit(client.upload(seed_files["bad_train"]), max_iter=5)
        # both trainers take work: four quick fits at once spread over them
        fits = [client.fit(train, max_iter=5) for _ in range(4)]
        for job in fits:
            job.wait(timeout=120)
        # online predictions through the gateway, which forwards them to the
        # pool compose names (FITYARD_PREDICTOR_ADDRESS), as the batch predict
        rows = pd.read_parquet(seed_files["test"]).head(5)
        via_gateway = client.predict_rows(fit, rows)
        assert list(via_gateway["y"]) == list(frame["y"].head(5))
    # and straight to the predictor, with the same key (compose's secret)
    predictor = f"127.0.0.1:{deployment.predictor_port}"
    with Client(gateway, api_key=deployment.api_key, predict_address=predictor) as direct:
        assert direct.predict_rows(fit, rows).equals(via_gateway)
    with Client(gateway, predict_address=predictor) as anonymous, pytest.raises(Unauthenticated):
        anonymous.predict_rows(fit, rows)
    # each trainer ran some (their ids are their own: compose leaves
    # FITYARD_TRAINER_ID empty, so each is its host name and pid)
    for name in ("trainer-a", "trainer-b"):
        assert "succeeded in" in deployment.log(name), deployment.log(name)

    # traces reach the collector's address, named by compose's OTEL_SERVICE_NAME
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        services = {s.service for s in read_trace(tmp_path / "spans", fit.trace_id)}
        if services >= {"fityard-gateway", "fityard-scheduler", "fityard-trainer"}:
            break
        time.sleep(0.3)
    assert services >= {"fityard-gateway", "fityard-scheduler", "fityard-trainer"}
    # every process serves /metrics where Prometheus would scrape it
    for name, ports in deployment.ports.items():
        url = f"http://127.0.0.1:{ports['FITYARD_METRICS_LISTEN']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert b"process_cpu_seconds_total" in reply.read(), name


def _eventually_ok(argv: list[str], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(argv, capture_output=True).returncode == 0:
            return True
        time.sleep(0.5)
    return False
