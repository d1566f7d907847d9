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


@pytest.fixture
def otel_env(monkeypatch):
    """No OTEL_* variable from the surroundings; trace.set_tracer_provider
    recorded instead of installing a provider in the test process."""
    import os

    from opentelemetry import trace

    from services.common import telemetry

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    installed = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    monkeypatch.setattr(telemetry.atexit, "register", lambda f: None)
    yield installed
    for provider in installed:
        provider.shutdown()


def test_with_nothing_set_no_provider_is_installed(otel_env):
    from services.common.telemetry import setup_tracing

    assert setup_tracing("gateway") is False
    assert otel_env == []


def test_sdk_disabled_installs_no_provider(otel_env, monkeypatch):
    from services.common.telemetry import setup_tracing

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert setup_tracing("gateway") is False
    assert otel_env == []


@pytest.mark.parametrize(
    "extra, name",
    [
        ({}, "fityard-scheduler"),
        ({"OTEL_SERVICE_NAME": "sched-eu"}, "sched-eu"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=s2,deployment.environment=prod"}, "s2"),
    ],
)
def test_an_endpoint_installs_the_sdk_provider_named_for_the_service(
    otel_env, monkeypatch, extra, name
):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider as SdkProvider

    from services.common.telemetry import setup_tracing

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    assert setup_tracing("scheduler") is True
    [provider] = otel_env
    assert isinstance(provider, SdkProvider)
    assert provider.resource.attributes["service.name"] == name
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)


def test_the_http_protocol_uses_the_http_exporter(otel_env, monkeypatch):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from services.common.telemetry import setup_tracing

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert setup_tracing("trainer") is True
    [processor] = otel_env[0]._active_span_processor._span_processors
    assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)


def test_grpc_interceptors_only_when_tracing(otel_env, monkeypatch):
    from services.common import telemetry

    assert telemetry.grpc_server_interceptors() == []
    assert telemetry.grpc_client_interceptors() == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    assert len(telemetry.grpc_server_interceptors()) == 1
    assert telemetry.grpc_client_interceptors()


def test_store_calls_are_spans_inside_a_trace_only(spans, tmp_path):
    from services.common.storage.local import LocalStore

    store = LocalStore(tmp_path)
    store.write_file("outside/a", __file__)  # no current span: no trace of its own
    assert spans.get_finished_spans() == ()
    with tracing.tracer.start_as_current_span("write model"):
        store.write_file("models/m", __file__)
        with store.local_copy("models/m"):
            pass
        store.stat("models/m")
    write, put, get, stat = sorted(spans.get_finished_spans(), key=lambda s: s.start_time)
    assert [s.name for s in (put, get, stat)] == ["store put", "store get", "store stat"]
    assert {s.parent.span_id for s in (put, get, stat)} == {write.context.span_id}
    size = (tmp_path / "models" / "m").stat().st_size
    assert dict(put.attributes) == {
        "fityard.store.backend": "local",
        "fityard.object.key": "models/m",
        "fityard.object.size": size,
    }
    assert get.attributes["fityard.object.size"] == size


def test_suppressed_store_calls_are_not_spans(spans, tmp_path):
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from services.common.storage.local import LocalStore

    with tracing.tracer.start_as_current_span("health"), suppress_instrumentation():
        LocalStore(tmp_path).write_file("a", __file__)
    assert [s.name for s in spans.get_finished_spans()] == ["health"]


def test_the_sdk_sends_the_callers_traceparent_only_when_there_is_one(spans, monkeypatch):
    import sys

    from fityard._tracing import trace_metadata

    assert trace_metadata() == []  # no current span
    with tracing.tracer.start_as_current_span("caller") as caller:
        [(name, value)] = trace_metadata()
        context = caller.get_span_context()
        assert name == "traceparent"
        assert value.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
        monkeypatch.setitem(sys.modules, "opentelemetry", None)  # a light install
        assert trace_metadata() == []


def test_a_flush_waits_a_bounded_time_for_a_collector_that_is_away():
    import threading
    import time

    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    from services.common import telemetry

    release = threading.Event()

    class Stuck:  # an exporter retrying a collector that does not answer
        def export(self, batch):
            release.wait(10)
            return SpanExportResult.FAILURE

        def shutdown(self):
            release.set()

        def force_flush(self, timeout_millis=0):
            return True

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Stuck(), schedule_delay_millis=60_000))
    try:
        with provider.get_tracer("t").start_as_current_span("job"):
            pass
        started = time.monotonic()
        telemetry.flush(0.3, provider)
        assert 0.25 < time.monotonic() - started < 2
        started = time.monotonic()
        telemetry.flush(0.3, provider)  # the first is still trying: no wait
        assert time.monotonic() - started < 0.1
    finally:
        release.set()
        provider.shutdown()
