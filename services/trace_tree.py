"""A trace as a tree in the terminal: what `fityard trace JOB_ID` prints.

Each line is one span: its service and name indented under its parent, when
it started after the trace did, how long it took, and a bar placing it on
the trace's timeline, so "where did this job's 40 s go?" is answered by
looking for the longest bar.
"""

from __future__ import annotations

from collections import defaultdict

from services.span_store import Span

BAR_WIDTH = 30


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
        left = round((span.start_ns - start) / total * BAR_WIDTH)
        width = max(1, round(span.duration_ns / total * BAR_WIDTH))
        bar = " " * left + "█" * min(width, BAR_WIDTH - left)
        rows.append((label, f"+{_seconds(span.start_ns - start)}", _seconds(span.duration_ns), bar))
    name_width = max(len(r[0]) for r in rows)
    lines = [f"{'span':{name_width}}  {'start':>10}  {'took':>10}  timeline"]
    lines += [f"{a:{name_width}}  {b:>10}  {c:>10}  |{d:{BAR_WIDTH}}|" for a, b, c, d in rows]
    return lines
