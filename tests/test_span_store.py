"""The embedded stack's trace receiver: spans exported over OTLP/gRPC by the
real SDK exporter come back by trace id, and print as a tree."""

from __future__ import annotations

import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from fityard import traces
from services import span_store
from services.embedded import free_port


def _provider(address: str, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://{address}", insecure=True))
    )
    return provider


def test_exported_spans_are_kept_by_trace_and_print_as_a_tree(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    server = span_store.serve(tmp_path, address)
    try:
        gateway = _provider(address, "fityard-gateway").get_tracer("t")
        trainer = _provider(address, "fityard-trainer").get_tracer("t")
        with gateway.start_as_current_span("SubmitFit", kind=SpanKind.SERVER) as root:
            time.sleep(0.01)
            with trainer.start_as_current_span("fit", attributes={"rows": 100}) as fit:
                fit.set_status(Status(StatusCode.ERROR, "no y"))
        with gateway.start_as_current_span("another trace"):
            pass
    finally:
        server.stop(1)
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = traces.read_trace(tmp_path, trace_id)
    assert [(s.service, s.name, s.kind) for s in spans] == [
        ("fityard-gateway", "SubmitFit", "SERVER"),
        ("fityard-trainer", "fit", "INTERNAL"),
    ]
    assert spans[1].parent_span_id == spans[0].span_id
    assert spans[1].attributes == {"rows": 100} and spans[1].status == "ERROR"
    lines = traces.render(spans)
    assert lines[1].startswith("fityard-gateway SubmitFit ")
    assert lines[2].startswith("  fityard-trainer fit !")  # indented under its parent, failed
    assert "█" in lines[1] and lines[1].rstrip().endswith("|")


def test_the_file_rolls_over_and_keeps_the_last_two(tmp_path):
    spans = span_store.SpanFile(tmp_path, max_bytes=2000)
    for n in range(30):
        spans.append([traces.Span(f"{n:032x}", f"{n:016x}", "", "svc", "op", "INTERNAL", n, n + 1)])
    assert traces.read_trace(tmp_path, f"{29:032x}")  # the newest is kept
    assert not traces.read_trace(tmp_path, f"{0:032x}")  # the oldest is gone
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2 * 2000
