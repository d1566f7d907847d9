"""What every system under test offers the benchmarks.

fityard, RQ + Redis (the seed's design) and Ray each implement this, so the
benchmarks run the same workload through each and compare like with like.
Times are seconds; wall-clock stamps are time.time() on this machine.
"""

from __future__ import annotations

import abc
from pathlib import Path


class Peer(abc.ABC):
    name: str  # e.g. "fityard (defaults)", "RQ, 2 workers", "Ray"

    @abc.abstractmethod
    def start(self) -> Peer:
        """Start servers/workers; return when ready to take jobs."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop everything started; leave no process behind."""

    def __enter__(self) -> Peer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @abc.abstractmethod
    def dispatch_latencies(self, train_path: Path, n: int) -> list[float]:
        """Submit n fits of `train_path` one after another (each waited for
        before the next); return, for each, seconds from just before the
        submit call to the moment the worker starts the job body."""

    @abc.abstractmethod
    def fit_seconds(self, train_path: Path, params: dict | None = None) -> float:
        """One fit end to end (`params`: HistGradientBoosting keywords):
        seconds from just before submit until the client knows it succeeded
        (data already where the system reads it)."""

    @abc.abstractmethod
    def makespan(self, train_path: Path, jobs: int) -> float:
        """Submit `jobs` fits of one dataset at once; seconds until the last
        one is known finished. Raise if any failed."""

    @abc.abstractmethod
    def toy_behind_long(self, long_path: Path, long_params: dict, toy_path: Path) -> float:
        """Start a long fit (`long_params`: HistGradientBoosting keywords),
        and once it runs submit a toy fit of `toy_path`; return the toy
        fit's seconds from submit to known finished. The long fit is
        waited out before returning."""
