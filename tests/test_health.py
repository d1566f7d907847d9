"""Health that tells the truth, on a running stack: while nats-server is
frozen (SIGSTOP) or gone (killed, restarted by the supervisor only later),
the gateway, the scheduler and a trainer say NOT_SERVING on grpc.health.v1;
once it is back they say SERVING, and the stack serves a job."""

from __future__ import annotations

import os
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fityard import Client
from ml.data import make_data
from services.embedded import EmbeddedStack, free_port, supervisor

pytestmark = pytest.mark.stack

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _status(address: str) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            return (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                .status
            )
        except grpc.RpcError:
            return None


def _wait_for(addresses: dict[str, str], status: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = {name: _status(address) for name, address in addresses.items()}
        if all(found == status for found in now.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout:g} s, wanted {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}: {now}"
            )
        time.sleep(0.2)


def test_health_follows_nats_server_down_and_back(tmp_path, monkeypatch):
    files = make_data(tmp_path / "seed", rows=2000)
    trainer_port = free_port()
    # A killed nats-server comes back after 6 s, not half a second: long
    # enough to see the services say so.
    monkeypatch.setattr(supervisor, "RESTART_FIRST_DELAY", 6.0)
    stack = EmbeddedStack(
        tmp_path / "stack",
        trainers=1,
        supervise=True,
        env={"FITYARD_TRAINER_HEALTH_LISTEN": f"127.0.0.1:{trainer_port}"},
    )
    with stack:
        addresses = {
            "gateway": stack.address,
            "scheduler": f"127.0.0.1:{stack.scheduler_port}",
            "trainer-1": f"127.0.0.1:{trainer_port}",
        }
        _wait_for(addresses, SERVING, 30)

        # Frozen: its connections stay open, it answers nothing.
        nats = stack.pid("nats")
        os.kill(nats, signal.SIGSTOP)
        try:
            _wait_for(addresses, NOT_SERVING, 30)
        finally:
            os.kill(nats, signal.SIGCONT)
        _wait_for(addresses, SERVING, 30)

        # Gone: killed, back when the supervisor restarts it.
        stack.process("nats").kill()
        _wait_for(addresses, NOT_SERVING, 5.5)
        _wait_for(addresses, SERVING, 60)
        assert stack.restarts("nats") == 1

        with Client(stack.address) as client:
            fit = client.fit(client.upload(files["train"]), max_iter=5).wait(timeout=120)
        assert fit.state == "SUCCEEDED"
