"""Prometheus metrics: each service process serves /metrics when
FITYARD_METRICS_LISTEN (host:port) is set, and nothing otherwise.

Why `prometheus-client` and not OpenTelemetry metrics with its Prometheus
exporter: Prometheus scrapes these endpoints (docker compose, Kubernetes),
and prometheus-client is its reference client: stable (the OTel Prometheus
exporter is still a pre-release), names and labels exactly as written here
(no unit suffixes or dots rewritten on the way), and its own small HTTP
server. Traces stay on OpenTelemetry (services/common/telemetry.py).

What each service counts lives with its code: `services/scheduler/metrics.py`
(jobs, queue), `services/gateway/metrics.py` (transfers),
`services/trainer/metrics.py` (busy, cores). Here: the endpoint and the gRPC
server metrics every gRPC server shares, named as grpc-ecosystem's
go-grpc-prometheus names them (grpc_server_started_total,
grpc_server_handled_total, grpc_server_handling_seconds), so dashboards and
alerts written for those work unchanged. README "Observability" lists them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import grpc
from prometheus_client import Counter, Histogram, start_http_server

from .grpc_handlers import around, behavior_attribute

log = logging.getLogger(__name__)

# Seconds, from a sub-millisecond GetJob to a WatchJob of an hour.
RPC_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)
_RPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")
RPCS_STARTED = Counter("grpc_server_started", "RPCs started on the server.", _RPC_LABELS)
RPCS_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by status code.",
    (*_RPC_LABELS, "grpc_code"),
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status (streams: the whole stream).",
    _RPC_LABELS,
    buckets=RPC_BUCKETS,
)
# Reflection is grpcurl's, not the API's: left out.
UNCOUNTED_SERVICES = ("grpc.reflection.v1alpha.ServerReflection",)


def serve_metrics(listen: str, service: str) -> int:
    """Serve /metrics on `listen` (host:port; empty: do nothing) from a
    thread of its own; return the port (0 when not serving)."""
    if not listen:
        return 0
    host, _, port = listen.rpartition(":")
    try:
        # all interfaces when no host is given: Prometheus scrapes from outside
        server, _thread = start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
    except (ValueError, OSError) as exc:
        raise SystemExit(
            f"FITYARD_METRICS_LISTEN={listen!r}: cannot serve metrics ({exc})"
        ) from None
    bound = server.server_address[1]
    log.info("%s metrics at http://%s:%d/metrics", service, host or "0.0.0.0", bound)  # noqa: S104
    return bound


class RpcMetrics(grpc.aio.ServerInterceptor):
    """Counts every RPC a grpc.aio server handles (started, handled by code,
    handling time), unary and streaming alike.

    Installed first, so it wraps everything else (tracing included) and
    sees the status the caller gets: an abort's code, CANCELLED for a call
    the client dropped, UNKNOWN for an exception nothing turned into a
    status."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        service, _, method = details.method.lstrip("/").rpartition("/")
        if service in UNCOUNTED_SERVICES:
            return handler
        labels = (service, method, GRPC_TYPES[behavior_attribute(handler)])
        return around(handler, lambda context: _observed(context, labels))


# go-grpc-prometheus's grpc_type of each kind of handler.
GRPC_TYPES = {
    "unary_unary": "unary",
    "unary_stream": "server_stream",
    "stream_unary": "client_stream",
    "stream_stream": "bidi_stream",
}


@contextlib.contextmanager
def _observed(context: grpc.aio.ServicerContext, labels: tuple[str, str, str]) -> Iterator[None]:
    RPCS_STARTED.labels(*labels).inc()
    started = time.perf_counter()
    code = grpc.StatusCode.UNKNOWN
    try:
        yield
        code = context.code() or grpc.StatusCode.OK
    except asyncio.CancelledError:
        code = grpc.StatusCode.CANCELLED
        raise
    except grpc.aio.AbortError:
        code = context.code() or grpc.StatusCode.UNKNOWN
        raise
    finally:
        RPCS_HANDLED.labels(*labels, _code_name(code)).inc()
        RPC_SECONDS.labels(*labels).observe(time.perf_counter() - started)


def _code_name(code) -> str:
    """OK, INVALID_ARGUMENT, ...: context.code() is a StatusCode or, set by
    some paths, its integer value."""
    if isinstance(code, grpc.StatusCode):
        return code.name
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return "UNKNOWN"
