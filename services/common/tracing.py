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

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .errors import ApiError

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


# Codes that are the server's fault: a transfer span ends with ERROR status
# for these (OpenTelemetry's gRPC convention for server spans); the others
# are the caller's mistakes and leave the status unset.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def traced_transfer(full_method: str):
    """Decorate a transfer handler (Upload, DownloadDataset,
    DownloadJobOutput) with a SERVER span of its own that ends with the
    transfer, the store calls of the transfer its children.

    The gRPC interceptor leaves streams out (services/common/telemetry.py);
    a transfer, unlike a WatchJob, ends when its bytes have moved, so it is
    traced here, as `full_method` with the rpc.* attributes, continuing the
    caller's trace when the call's metadata carries a traceparent. The
    status code is the ApiError's (services/common/errors.py), set before
    handle_errors (outside this decorator) turns it into the call's status."""
    service, _, method = full_method.strip("/").rpartition("/")

    def decorate(handler):
        @functools.wraps(handler)
        async def traced(self, request, context):
            carrier = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            with tracer.start_as_current_span(
                full_method,
                context=propagate.extract(carrier),
                kind=SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                code = grpc.StatusCode.UNKNOWN
                try:
                    result = await handler(self, request, context)
                    code = grpc.StatusCode.OK
                    return result
                except ApiError as exc:
                    code = exc.code
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    raise
                finally:
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    if code in _SERVER_FAULTS:
                        span.set_status(Status(StatusCode.ERROR, code.name))

        return traced

    return decorate


def store_span(operation: str, key: str, backend: str, **attributes):
    """A span for one object-store call (put, get, stat, delete) of either
    backend, recorded only inside a trace: the store is one hop of a job's
    trace (the worker's reads and writes) and of a transfer's (the gateway's
    uploads and downloads: `traced_transfer`), while calls made outside any
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
