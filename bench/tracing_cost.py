"""What tracing costs: the same stack with tracing off and on (spans
exported over OTLP to the local receiver `fityard up` runs), dispatch
latency and a seed fit end to end, measured in alternating rounds so the
VM's drift hits both; each figure is the median of the rounds, the rounds'
spread kept with it. Goal: tracing on within 1.10x of off at dispatch p50."""

from __future__ import annotations

import statistics
from pathlib import Path

from .measure import Figure, percentile
from .peers.fityard_peer import FityardPeer

ROUNDS = 3


def measure_tracing_cost(
    say, files: dict, dispatch_fits: int, work: Path, rounds: int = ROUNDS
) -> list[Figure]:
    off = FityardPeer(work / "tracing-off", label="tracing off")
    on = FityardPeer(work / "tracing-on", label="tracing on", keep_traces=True)
    samples: dict[tuple[str, str], list[float]] = {}
    with off, on:
        for peer in (off, on):  # first jobs pay one-off costs
            peer.fit_seconds(files["seed"])
        for i in range(rounds):
            # off first in even rounds, on first in odd ones
            for peer in (off, on) if i % 2 == 0 else (on, off):
                say(f"tracing cost, round {i + 1}/{rounds}: {peer.name}")
                latencies = [
                    s * 1000 for s in peer.dispatch_latencies(files["tiny"], dispatch_fits)
                ]
                for p in (50, 95):
                    samples.setdefault((peer.name, f"p{p}"), []).append(percentile(latencies, p))
                samples.setdefault((peer.name, "fit"), []).append(peer.fit_seconds(files["seed"]))
        spans = _spans_kept(on)
    figures = []
    for key, benchmark, unit, goal in [
        ("p50", "tracing on: dispatch latency p50", "ms", "<= 1.10"),
        ("p95", "tracing on: dispatch latency p95", "ms", ""),
        ("fit", "tracing on: seed fit end to end", "s", ""),
    ]:
        with_tracing, without = samples[(on.name, key)], samples[(off.name, key)]
        value, baseline = statistics.median(with_tracing), statistics.median(without)
        ratios = [a / b for a, b in zip(with_tracing, without, strict=True)]
        figures.append(
            Figure(
                benchmark,
                on.name,
                value,
                unit,
                baseline,
                "the same with tracing off, alternating rounds",
                goal,
                met=value / baseline <= 1.10 if goal else None,
                extra={
                    "rounds": rounds,
                    "on": with_tracing,
                    "off": without,
                    "round_ratios": ratios,
                    "spread": [min(ratios), max(ratios)],
                    "spans_exported": spans,
                },
            )
        )
    return figures


def _spans_kept(peer: FityardPeer) -> int:
    """Spans the receiver wrote for the tracing-on stack (after its
    services flushed on stop; read while the stack is still up here, so
    only what was exported during the run counts)."""
    path = peer.stack.traces_dir / "spans.jsonl"
    if not path.exists():
        return 0
    with path.open() as f:
        return sum(1 for _ in f)
