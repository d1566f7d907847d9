"""When the stack counts as started, and the error when it does not.

The stack is up when the gateway (and each predictor) answers grpc.health.v1
with SERVING: the gateway is the last child started and serves only once it
reached the scheduler, NATS and the store. A child that dies meanwhile ends
the wait at once with its log's tail, instead of the whole timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class StackError(RuntimeError):
    pass


def wait_healthy(
    address: str, timeout: float, credentials: grpc.ChannelCredentials | None = None
) -> bool:
    """True once the gRPC server at `address` reports SERVING (over TLS
    with `credentials`)."""
    deadline = time.monotonic() + timeout
    channel = (
        grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    return False


def wait_tcp(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """True once something accepts connections on 127.0.0.1:`port`; False
    after `timeout`, or at once when `alive()` (the process that should
    listen) says it is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_gateway(
    address: str,
    timeout: float,
    credentials: grpc.ChannelCredentials | None,
    dead_children: Callable[[], list[str]],
    log_tail: Callable[[str], str],
) -> None:
    """Until the gateway at `address` is SERVING; StackError if it is not
    within `timeout` or a child (`dead_children`) stops first."""
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(wait_healthy(address, timeout, credentials)),
        daemon=True,
    )
    waiter.start()
    while waiter.is_alive():
        waiter.join(0.2)
        dead = dead_children()
        if dead:
            name = dead[0].split(" ")[0]
            raise StackError(f"{', '.join(dead)} stopped while starting:\n{log_tail(name)}")
    if not result or not result[0]:
        raise StackError(
            f"the gateway did not become healthy in {timeout:.0f}s:\n{log_tail('gateway')}"
        )


def wait_predictors(
    predictors: dict[str, str],
    timeout: float,
    credentials: grpc.ChannelCredentials | None,
    log_tail: Callable[[str], str],
) -> None:
    """Until each predictor (name -> address) is SERVING, else StackError."""
    for name, address in predictors.items():
        if not wait_healthy(address, timeout, credentials):
            raise StackError(f"{name} did not become healthy in {timeout:.0f}s:\n{log_tail(name)}")
