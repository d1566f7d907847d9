"""A trainer's memory per job: the peak RSS of the worker process that ran
a fit, against the bytes of the dataset it read (Parquet on disk)."""

from __future__ import annotations

from pathlib import Path

from fityard import Client

from .cores import stack_processes
from .cpu import parent
from .measure import Figure, reset_peak_rss, rss_bytes


def worker_pids(stack) -> list[int]:
    trainers = {stack.pid(name) for name in stack.names() if name.startswith("trainer")}
    return [pid for pid in stack_processes(stack) if parent(pid) in trainers]


def measure_trainer_memory(stack, client: Client, dataset_id: str, dataset_bytes: int) -> Figure:
    workers = worker_pids(stack)
    for pid in workers:
        reset_peak_rss(pid)
    before = {pid: rss_bytes(pid)[0] for pid in workers}
    client.fit(dataset_id).wait()
    peaks = {pid: rss_bytes(pid)[1] for pid in workers if Path(f"/proc/{pid}").exists()}
    ran = max(peaks, key=lambda pid: peaks[pid] - before[pid])  # the one that grew
    mib = 2**20
    return Figure(
        "trainer memory per job (seed fit)",
        "fityard (defaults)",
        peaks[ran] / mib,
        "MiB",
        dataset_bytes / mib,
        "the dataset's Parquet bytes",
        "reported",
        extra={
            "worker_rss_before_mib": before[ran] / mib,
            "growth_mib": (peaks[ran] - before[ran]) / mib,
        },
    )
