"""A small OTLP trace receiver that keeps recent spans on disk.

`fityard up` runs one so that `fityard trace JOB_ID` shows a job's trace with
no Jaeger or collector: the services export to it over OTLP/gRPC like they
would to a collector, it appends each span as one JSON line to
`<dir>/spans.jsonl`, where fityard/traces.py (the client side, which
defines the format) finds a trace's spans. The file
rolls over to `spans.1.jsonl` past `max_bytes`, so "recent" means the last
one to two files' worth.

Built on opentelemetry-proto's TraceService; it is not a collector (no
batching, no sampling, no other signal), only a place to look.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

# The file format is the client's to read (`fityard trace` in a light install).
from fityard.traces import FILE, OLD_FILE, Span

MAX_BYTES = 64 * 1024 * 1024


def _value(value: common_pb2.AnyValue):
    which = value.WhichOneof("value")
    if which in ("array_value", "kvlist_value"):
        return str(getattr(value, which))
    return getattr(value, which) if which else None


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[Span]:
    """The spans in an OTLP export request."""
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    service=service,
                    name=span.name,
                    kind=trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status="ERROR"
                    if span.status.code == trace_pb2.Status.STATUS_CODE_ERROR
                    else "",
                    attributes={a.key: _value(a.value) for a in span.attributes},
                    links=tuple(
                        link.span_id.hex() for link in span.links if link.trace_id == span.trace_id
                    ),
                )


class SpanFile:
    """Appends spans to `<dir>/spans.jsonl`, rolling over past max_bytes."""

    def __init__(self, directory: Path, max_bytes: int = MAX_BYTES):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def append(self, spans: list[Span]) -> None:
        lines = "".join(span.to_json() + "\n" for span in spans)
        path = self.directory / FILE
        with self._lock:
            if path.exists() and path.stat().st_size + len(lines) > self.max_bytes:
                path.replace(self.directory / OLD_FILE)
            with path.open("a") as out:
                out.write(lines)


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, spans: SpanFile):
        self.spans = spans

    def Export(self, request, context):
        self.spans.append(list(spans_of(request)))
        return trace_service_pb2.ExportTraceServiceResponse()


def serve(directory: Path, address: str, max_bytes: int = MAX_BYTES) -> grpc.Server:
    """Start a receiver on `address` (host:port) writing under `directory`;
    the caller stops it with `.stop(grace)`."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        _Receiver(SpanFile(directory, max_bytes)), server
    )
    if not server.add_insecure_port(address):
        raise OSError(f"cannot listen on {address} for traces")
    server.start()
    return server
