"""Tracing for every service, configured only by the standard OTEL_* variables.

Nothing set (no OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
or OTEL_SDK_DISABLED=true: no tracer provider is installed, so every span the
code starts is the API's no-op span and tracing costs next to nothing. With an
endpoint: the SDK's TracerProvider with a batch OTLP exporter, its protocol
from OTEL_EXPORTER_OTLP_PROTOCOL (grpc, the default, or http/protobuf), its
sampler from OTEL_TRACES_SAMPLER, its resource from OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES; a service that is not told its name calls itself
`fityard-<service>`.

The SDK reads those variables itself; this module only decides whether to
install it and names the service, so a deployment configures tracing the way
it configures any other OpenTelemetry program.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from opentelemetry import trace

log = logging.getLogger(__name__)

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_wanted(environ: os._Environ | dict = os.environ) -> bool:
    """True if the OTEL_* variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def setup_tracing(service: str) -> bool:
    """Install the SDK's tracer provider for `service` if tracing is wanted.

    Returns whether it did. Spans still buffered are exported at exit (a
    process that is killed loses them: the trainer's worker flushes after
    each job)."""
    provider = tracer_provider(service)
    if provider is None:
        return False
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    log.info("tracing to %s", _endpoint())
    return True


def tracer_provider(service: str):
    """The SDK's TracerProvider for `service` exporting over OTLP as the
    OTEL_* variables say, or None when tracing is not wanted. Not installed."""
    if not tracing_wanted():
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read here.
    resource = Resource.create()
    if resource.attributes.get(SERVICE_NAME, "").startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"fityard-{service}"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    return provider


_flushing: threading.Thread | None = None


def flush(wait: float = 2.0, provider=None) -> None:
    """Export the spans ended so far, waiting at most `wait` seconds: for a
    process that may be killed next (the trainer's worker, after each job).

    Bounded by a thread of its own because the OTLP exporter keeps retrying
    an unreachable collector for up to its own timeout (OTEL_EXPORTER_OTLP_
    TIMEOUT, 10 s; measured: 6-8 s) whatever force_flush's timeout says. The
    flush carries on in the background after `wait`, and while one is still
    going later calls do not wait at all: a collector that is away delays a
    job by at most `wait`, and not every job."""
    global _flushing
    if _flushing is not None and _flushing.is_alive():
        return
    provider = provider or trace.get_tracer_provider()
    if not hasattr(provider, "force_flush"):
        return  # the API's provider: nothing is recorded
    _flushing = threading.Thread(target=provider.force_flush, name="span-flush", daemon=True)
    _flushing.start()
    _flushing.join(wait)


def _endpoint() -> str:
    return next((os.environ[n] for n in reversed(_ENDPOINT_VARIABLES) if os.environ.get(n)), "")


def _exporter():
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use grpc or http/protobuf"
    )


def grpc_server_interceptors() -> list:
    """Server-span interceptors for a grpc.aio server ([] when not tracing;
    services/common/rpc_tracing.py)."""
    if not tracing_wanted():
        return []
    from .rpc_tracing import TracingServerInterceptor

    return [TracingServerInterceptor()]


def grpc_client_interceptors() -> list:
    """Client-span interceptors for a grpc.aio channel ([] when not tracing):
    they also carry the trace context to the server in the call's metadata."""
    if not tracing_wanted():
        return []
    from .rpc_tracing import TracingClientInterceptor

    return [TracingClientInterceptor()]
