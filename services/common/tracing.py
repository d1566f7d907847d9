"""Trace context across NATS, where no maintained instrumentation exists.

A job's trace starts at its submit: the scheduler keeps the submit span's W3C
`traceparent` on the JobRecord (so `Job.trace_id` names the trace) and
publishes the job inside a PRODUCER span whose context travels in the
message's headers (`opentelemetry.propagate`, W3C trace context). A trainer
extracts it and runs the job inside a CONSUMER "process" span that is its
child; a redelivered or handed-back attempt is another process span under
the same publish span, so every attempt of a job is in the one trace (a
child rather than a link: the attempts are the job's work, and a viewer
shows them in place under the publish; links are for messages that start
work of their own, as in a batch). An attempt whose trainer is
killed outright (SIGKILL, out of memory) leaves no process span: a span is
exported only once it ends. Trainer events back to the scheduler are traced
the same way.

Spans follow the OpenTelemetry messaging semantic conventions:
`messaging.system`, `messaging.destination.name` (the subject),
`messaging.operation.type` (send / process), `messaging.consumer.group.name`
(the durable consumer), `messaging.message.id`.

With tracing off (services/common/telemetry.py) the API's no-op tracer makes
all of this nearly free: no span is recorded and nothing is injected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

tracer = trace.get_tracer("fityard")

TRACEPARENT = "traceparent"


def current_traceparent() -> str:
    """The current span's W3C traceparent, "" when there is none (tracing off)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def trace_id_of(traceparent: str) -> str:
    """The trace id (32 hex digits) in a traceparent, "" if there is none."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


def context_of(traceparent: str = "", headers: dict | None = None) -> otel_context.Context:
    """The context a traceparent (or message headers carrying one) names."""
    carrier = dict(headers or {})
    if traceparent:
        carrier[TRACEPARENT] = traceparent
    return propagate.extract(carrier)


def with_trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the current span's trace context."""
    propagate.inject(headers)
    return headers


@contextmanager
def send_span(subject: str, parent: str = "", message_id: str = "") -> Iterator[Span]:
    """A PRODUCER span for publishing to `subject`, under `parent`
    (a traceparent) if given, else the current span."""
    ctx = context_of(parent) if parent else None
    with tracer.start_as_current_span(
        f"send {subject.split('.', 1)[0]}",
        context=ctx,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.operation.type": "send",
            **({"messaging.message.id": message_id} if message_id else {}),
        },
    ) as span:
        yield span


@contextmanager
def process_span(
    subject: str, headers: dict | None, consumer: str, message_id: str = "", **attributes
) -> Iterator[Span]:
    """A CONSUMER span for processing a message, child of the span that
    sent it (its context read from the message's headers)."""
    with tracer.start_as_current_span(
        f"process {subject.split('.', 1)[0]}",
        context=context_of(headers=headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": consumer,
            **({"messaging.message.id": message_id} if message_id else {}),
            **attributes,
        },
    ) as span:
        yield span


def store_span(operation: str, key: str, backend: str, **attributes):
    """A span for one object-store call (put, get, stat, delete) of either
    backend, recorded only inside a trace: the store is one hop of a job's
    trace (the worker's reads and writes) and of a transfer's (the gateway's
    uploads and downloads: rpc_tracing.traced_transfer), while calls made outside any
    span (sweeps, health checks) do not each start a trace of their own. `suppress_instrumentation()`
    silences it like any instrumentation. The context manager yields the
    span (a non-recording one when nothing is recorded)."""
    if not trace.get_current_span().get_span_context().is_valid or _suppressed():
        return contextlib.nullcontext(trace.INVALID_SPAN)
    return tracer.start_as_current_span(
        f"store {operation}",
        kind=SpanKind.CLIENT if backend == "s3" else SpanKind.INTERNAL,
        attributes={
            "fityard.store.backend": backend,
            "fityard.object.key": key,
            **attributes,
        },
    )


def _suppressed() -> bool:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    return not is_instrumentation_enabled()
