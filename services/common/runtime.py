"""Process plumbing shared by the services: logging, a grpc.aio server with
health checking and reflection, and graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

# One per-message limit for servers, channels and the SDK (fityard/limits.py).
from fityard.limits import MAX_MESSAGE_BYTES

from . import logs
from .config import Config
from .lifecycle import die_with_parent
from .metrics import RpcMetrics
from .telemetry import grpc_server_interceptors

# Set by a supervisor that wants its services to die with it (`fityard up`:
# services/embedded/): the supervisor's pid.
PARENT_PID_ENV = "FITYARD_PARENT_PID"

T = TypeVar("T")


def setup_logging(service: str) -> logging.Logger:
    """Logging for a service process (services/common/logs.py: JSON lines or
    text, FITYARD_LOG_FORMAT and FITYARD_LOG_LEVEL); also, when started by a
    supervisor that asks for it, tie the process's life to the supervisor's."""
    config = Config.from_env()
    logs.configure(service, config.log_level, config.log_format)
    parent = os.environ.get(PARENT_PID_ENV)
    if parent:
        die_with_parent(signal.SIGKILL, parent_pid=int(parent))
    return logging.getLogger(service)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a service's `main` on the event loop FITYARD_EVENT_LOOP names:
    uvloop by default (the same asyncio API on libuv; its socket and
    callback handling cost less CPU per NATS and gRPC message, and a job
    is a few dozen messages), the standard loop when set to asyncio."""
    if Config.from_env().event_loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so that services drain and exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


# How long a connection to a pooled service takes new calls.
POOL_CONNECTION_AGE_MS = 60_000


class GrpcServer:
    """A grpc.aio server that also serves grpc.health.v1.Health and server
    reflection for the given service names (so grpcurl list/describe work);
    with `count_rpcs`, every RPC is counted for /metrics
    (services/common/metrics.py)."""

    def __init__(
        self,
        listen: str,
        service_names: Iterable[str],
        *,
        count_rpcs: bool = False,
        guards: Iterable[grpc.aio.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
        pooled: bool = False,
    ):
        # RpcMetrics first: it wraps the rest, so it counts what the guards
        # (authentication) refuse too; tracing last, around the handler.
        counting = [RpcMetrics()] if count_rpcs else []
        self.server = grpc.aio.server(
            interceptors=[*counting, *guards, *grpc_server_interceptors()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Off: a second service started on a taken port must fail, not
                # share it. On for a `pooled` service (the predictors), whose
                # processes on one machine share one port by design.
                ("grpc.so_reuseport", int(pooled)),
                # A pooled service asks clients to reconnect after a while, so
                # that they spread over members added since they connected (a
                # balancer picks per connection). Calls in flight, streams of
                # any length included, finish on the old connection (no grace
                # limit).
                *([("grpc.max_connection_age_ms", POOL_CONNECTION_AGE_MS)] if pooled else []),
                # Let clients ping every 30 s, so a WatchJob stream that
                # lasts hours notices a dead connection quickly.
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(self.service_names, self.server)
        self._stopping = False
        self.port = (
            self.server.add_secure_port(listen, credentials)
            if credentials is not None
            else self.server.add_insecure_port(listen)
        )
        if self.port == 0:
            raise SystemExit(f"cannot listen on {listen}: address in use or invalid")

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        """What grpc.health.v1 says for every service name (services/common/
        health.py decides); once stop() began, NOT_SERVING for good."""
        status = health_pb2.HealthCheckResponse
        state = status.SERVING if serving and not self._stopping else status.NOT_SERVING
        for name in ["", *self.service_names]:
            await self.health.set(name, state)

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping = True
        await self.set_serving(False)
        await self.server.stop(grace)


def server_tls(config) -> grpc.ServerCredentials | None:
    """The gateway's TLS credentials from its config (None: plaintext). A
    client CA makes client certificates required (mTLS). A half-given pair
    stops the service, saying which file is missing."""
    if not (config.tls_cert_file or config.tls_key_file):
        if config.tls_client_ca_file:
            raise SystemExit("FITYARD_TLS_CLIENT_CA_FILE needs FITYARD_TLS_CERT_FILE and _KEY_FILE")
        return None
    if not (config.tls_cert_file and config.tls_key_file):
        raise SystemExit("TLS needs both FITYARD_TLS_CERT_FILE and FITYARD_TLS_KEY_FILE")
    key = Path(config.tls_key_file).read_bytes()
    chain = Path(config.tls_cert_file).read_bytes()
    client_ca = Path(config.tls_client_ca_file).read_bytes() if config.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
