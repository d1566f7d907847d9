"""Small measuring helpers shared by the benchmarks."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bare_fit_seconds(train_path: Path, params: dict | None = None) -> float:
    """The baseline: ml.fit in this process, with every core, same data
    (`params`: HistGradientBoosting keywords)."""
    import ml

    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        started = time.perf_counter()
        ml.fit(train_path, os.path.join(tmp, "model.joblib"), params=params)
        return time.perf_counter() - started


def median_of(runs: int, measure) -> float:
    return statistics.median(measure() for _ in range(runs))


@dataclass
class Figure:
    """One line of the results table."""

    benchmark: str
    system: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    goal: str = ""
    met: bool | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak_rss(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
