"""Trace context across NATS (services/common/tracing.py) and when tracing
is on at all (services/common/telemetry.py), without a server: spans go to
the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common import tracing
from services.common.telemetry import tracing_wanted


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("test"))
    return exporter


@pytest.mark.parametrize(
    "environ, wanted",
    [
        ({}, False),  # nothing set: no exporter, no-op spans
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask(environ, wanted):
    assert tracing_wanted(environ) is wanted


def test_a_job_published_and_processed_is_one_trace_with_messaging_attributes(spans):
    with tracing.tracer.start_as_current_span("SubmitJob"):
        traceparent = tracing.current_traceparent()
    assert tracing.trace_id_of(traceparent)
    # The publish happens under the submit's context (kept on the record),
    # the process under the headers the message carried.
    with tracing.send_span("jobs.default.fit.t.job_1", parent=traceparent, message_id="job_1"):
        headers = tracing.with_trace_headers({"Nats-Msg-Id": "job_1"})
    with tracing.process_span("jobs.default.fit.t.job_1", headers, "trainers", message_id="job_1"):
        pass
    submit, send, process = sorted(spans.get_finished_spans(), key=lambda s: s.start_time)
    assert {s.context.trace_id for s in (submit, send, process)} == {submit.context.trace_id}
    assert format(submit.context.trace_id, "032x") == tracing.trace_id_of(traceparent)
    assert send.parent.span_id == submit.context.span_id
    assert process.parent.span_id == send.context.span_id
    assert (send.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert dict(send.attributes) == {
        "messaging.system": "nats",
        "messaging.destination.name": "jobs.default.fit.t.job_1",
        "messaging.operation.type": "send",
        "messaging.message.id": "job_1",
    }
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.consumer.group.name"] == "trainers"


def test_without_tracing_nothing_is_carried():
    assert tracing.current_traceparent() == ""
    assert tracing.trace_id_of("") == ""
    assert tracing.with_trace_headers({}) == {}
