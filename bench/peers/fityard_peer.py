"""fityard as a benchmark peer: the embedded stack (`fityard up`) driven
through the SDK, exactly as a user would."""

from __future__ import annotations

import time
from pathlib import Path

from fityard import Client
from services.embedded import EmbeddedStack

from .base import Peer


class FityardPeer(Peer):
    def __init__(
        self,
        workdir: Path,
        trainers: int | None = None,
        label: str = "",
        keep_traces: bool = False,
    ):
        self.workdir = Path(workdir)
        self.trainers = trainers
        # tracing on, exported to the stack's own OTLP receiver (as `fityard up`)
        self.keep_traces = keep_traces
        self.name = (
            f"fityard ({label or ('defaults' if trainers is None else f'{trainers} trainer(s)')})"
        )
        self.stack: EmbeddedStack | None = None
        self.client: Client | None = None
        self._datasets: dict[Path, str] = {}

    def start(self) -> FityardPeer:
        self.stack = EmbeddedStack(
            self.workdir, trainers=self.trainers, keep_traces=self.keep_traces
        ).start()
        self.client = Client(self.stack.address)
        self._warm_up()
        return self

    def _warm_up(self) -> None:
        """Run a job on every trainer, so worker processes that are still
        starting do not count against the first measurements."""
        import pandas as pd

        tiny = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]})
        dataset = self.client.upload(tiny, name="warm-up.parquet", progress=False)
        for job in [self.client.fit(dataset, max_iter=1) for _ in range(self.stack.trainers * 2)]:
            job.wait()

    def stop(self) -> None:
        if self.client:
            self.client.close()
        if self.stack:
            self.stack.stop()

    def dataset(self, path: Path) -> str:
        """Upload once; jobs then read it from the store (not timed)."""
        if path not in self._datasets:
            self._datasets[path] = self.client.upload(path, progress=False).id
        return self._datasets[path]

    def dispatch_latencies(self, train_path: Path, n: int) -> list[float]:
        dataset = self.dataset(train_path)
        latencies = []
        for _ in range(n):
            submitted = time.time()
            job = self.client.fit(dataset).wait()
            # start_time: the trainer's RUNNING report, just before it hands
            # the job body to its worker process.
            latencies.append(job.start_time.timestamp() - submitted)
        return latencies

    def fit_seconds(self, train_path: Path, params: dict | None = None) -> float:
        dataset = self.dataset(train_path)
        started = time.perf_counter()
        self.client.fit(dataset, **(params or {})).wait()
        return time.perf_counter() - started

    def makespan(self, train_path: Path, jobs: int) -> float:
        dataset = self.dataset(train_path)
        started = time.perf_counter()
        submitted = [self.client.fit(dataset) for _ in range(jobs)]
        for job in submitted:
            job.wait()  # raises JobFailed
        return time.perf_counter() - started

    def toy_behind_long(self, long_path: Path, long_params: dict, toy_path: Path) -> float:
        """The toy fit goes on the small lane and runs at once, beside the
        long fit that leases every core (README, "Lanes")."""
        long = self.client.fit(self.dataset(long_path), **long_params)
        while long.refresh().state == "QUEUED":
            time.sleep(0.01)
        toy = self.dataset(toy_path)
        t0 = time.perf_counter()
        self.client.fit(toy).wait()
        seconds = time.perf_counter() - t0
        # waited out, not cancelled: a cancel kills the trainer's worker, and
        # the next measurement would time its restart
        long.wait()
        return seconds
