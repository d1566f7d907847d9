"""The caller's trace context, for the calls that start work on the server."""

from __future__ import annotations


def trace_metadata() -> list[tuple[str, str]]:
    """The caller's trace context (W3C traceparent) when the caller traces
    with OpenTelemetry, so a job's trace continues the caller's. The SDK does
    not depend on OpenTelemetry: without it, or without a current span,
    nothing is sent and the server starts the job's trace."""
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return []
    if not trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())
