"""A job's trace in the terminal: what `fityard trace JOB_ID` prints.

`fityard up` keeps recent spans in `<data dir>/traces/` (the server's OTLP
receiver, services/span_store.py, writes them there), one JSON object per
line; this module is the reading side of that file format, so the light
client can show a trace with nothing but the standard library. Each printed
line is one span: its service and name indented under its parent, when it
started after the trace did, how long it took, and a bar placing it on the
trace's timeline, so "where did this job's 40 s go?" is answered by looking
for the longest bar.

Against a deployment (spans in a collector, not on this disk) the command
prints the trace id and the trace viewer's URL instead: FITYARD_TRACE_URL, a
template with `{trace_id}`, Jaeger's by default.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TRACES_DIR = "traces"  # under the data dir of `fityard up`
FILE = "spans.jsonl"
OLD_FILE = "spans.1.jsonl"  # the file before the last roll-over
TRACE_URL_ENV = "FITYARD_TRACE_URL"
DEFAULT_TRACE_URL = "http://localhost:16686/trace/{trace_id}"  # Jaeger's UI (docker compose)
BAR_WIDTH = 30


@dataclass(frozen=True)
class Span:
    """One finished span."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root
    service: str
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    start_ns: int
    end_ns: int
    status: str = ""  # "ERROR" or ""
    attributes: dict = field(default_factory=dict)
    links: tuple[str, ...] = ()  # span ids this one is linked to, in the same trace

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "links": list(self.links)})


def trace_url(trace_id: str) -> str:
    return os.environ.get(TRACE_URL_ENV, DEFAULT_TRACE_URL).format(trace_id=trace_id)


def read_trace(directory: str | Path, trace_id: str) -> list[Span]:
    """Every span of `trace_id` kept under `directory`, in start order."""
    found = []
    for name in (OLD_FILE, FILE):
        path = Path(directory) / name
        if not path.exists():
            continue
        with path.open() as lines:
            for line in lines:
                if trace_id not in line:  # cheap pre-filter before parsing
                    continue
                fields = json.loads(line)
                if fields["trace_id"] == trace_id:
                    fields["links"] = tuple(fields.get("links", ()))
                    found.append(Span(**fields))
    return sorted(found, key=lambda s: (s.start_ns, s.end_ns))


def _seconds(ns: int) -> str:
    s = ns / 1e9
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def _ordered(spans: list[Span]) -> list[tuple[int, Span]]:
    """(depth, span) depth-first, children in start order; a span whose
    parent was not kept (still open, or dropped) is shown as a root."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    roots = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.end_ns)):
        if span.parent_span_id and span.parent_span_id in ids:
            children[span.parent_span_id].append(span)
        else:
            roots.append(span)
    ordered: list[tuple[int, Span]] = []
    stack = [(0, root) for root in reversed(roots)]
    while stack:
        depth, span = stack.pop()
        ordered.append((depth, span))
        stack.extend((depth + 1, child) for child in reversed(children[span.span_id]))
    return ordered


def render(spans: list[Span]) -> list[str]:
    """The lines `fityard trace` prints for one trace's spans."""
    if not spans:
        return []
    start = min(span.start_ns for span in spans)
    total = max(max(span.end_ns for span in spans) - start, 1)
    rows = []
    for depth, span in _ordered(spans):
        label = "  " * depth + f"{span.service} {span.name}" + (" !" if span.status else "")
        left = min(round((span.start_ns - start) / total * BAR_WIDTH), BAR_WIDTH - 1)
        width = max(1, round(span.duration_ns / total * BAR_WIDTH))
        bar = " " * left + "█" * min(width, BAR_WIDTH - left)
        rows.append((label, f"+{_seconds(span.start_ns - start)}", _seconds(span.duration_ns), bar))
    name_width = max(len(r[0]) for r in rows)
    lines = [f"{'span':{name_width}}  {'start':>10}  {'took':>10}  timeline"]
    lines += [f"{a:{name_width}}  {b:>10}  {c:>10}  |{d:{BAR_WIDTH}}|" for a, b, c, d in rows]
    return lines
