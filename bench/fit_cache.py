"""The seed's example_2 (many fits of the same file at once) with a fixed
random_state, answered by the fit cache, against the same fits without one,
which all train; both on the same stack, alternating, median of the rounds."""

from __future__ import annotations

import statistics
import time

from fityard import Client

from .measure import Figure

ROUNDS = 3


def _makespan(client: Client, dataset_id: str, fits: int, **params) -> float:
    started = time.perf_counter()
    for job in [client.fit(dataset_id, **params) for _ in range(fits)]:
        job.wait()
    return time.perf_counter() - started


def measure_example_2(client: Client, dataset_id: str, fits: int) -> Figure:
    cached, trained = [], []
    for round_ in range(ROUNDS):
        # A random_state of its own per round: each round's first fit trains.
        cached.append(_makespan(client, dataset_id, fits, random_state=round_))
        trained.append(_makespan(client, dataset_id, fits))
    ratios = [c / t for c, t in zip(cached, trained, strict=True)]
    value, baseline = statistics.median(cached), statistics.median(trained)
    return Figure(
        f"example_2: {fits} fits of one file, random_state fixed (makespan)",
        "fityard (defaults)",
        value,
        "s",
        baseline,
        f"the same {fits} fits without random_state (all trained)",
        "one trains, the rest are cache hits; <= 0.25",
        met=value / baseline <= 0.25,
        extra={"cached": cached, "trained": trained, "spread": [min(ratios), max(ratios)]},
    )
