"""A trainer's memory per job: the peak RSS of the worker process that ran
a fit, against the bytes of the dataset it read (Parquet on disk)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fityard import Client

from .cores import stack_processes
from .cpu import parent
from .measure import Figure, reset_peak_rss, rss_bytes


def worker_pids(stack) -> list[int]:
    trainers = {stack.pid(name) for name in stack.names() if name.startswith("trainer")}
    return [pid for pid in stack_processes(stack) if parent(pid) in trainers]


@dataclass
class WorkerPeak:
    """The worker that grew while a job ran: its RSS before and its peak, bytes."""

    before: int = 0
    peak: int = 0


@contextlib.contextmanager
def worker_peak(stack) -> Iterator[WorkerPeak]:
    """Measure the block (a job run to its end): the peak RSS of the
    stack's worker that ran it (the one that grew), filled in on exit."""
    workers = worker_pids(stack)
    for pid in workers:
        reset_peak_rss(pid)
    before = {pid: rss_bytes(pid)[0] for pid in workers}
    measured = WorkerPeak()
    yield measured
    peaks = {pid: rss_bytes(pid)[1] for pid in workers if Path(f"/proc/{pid}").exists()}
    ran = max(peaks, key=lambda pid: peaks[pid] - before[pid])
    measured.before, measured.peak = before[ran], peaks[ran]


def measure_trainer_memory(stack, client: Client, dataset_id: str, dataset_bytes: int) -> Figure:
    with worker_peak(stack) as worker:
        client.fit(dataset_id).wait()
    mib = 2**20
    return Figure(
        "trainer memory per job (seed fit)",
        "fityard (defaults)",
        worker.peak / mib,
        "MiB",
        dataset_bytes / mib,
        "the dataset's Parquet bytes",
        "reported",
        extra={
            "worker_rss_before_mib": worker.before / mib,
            "growth_mib": (worker.peak - worker.before) / mib,
        },
    )
