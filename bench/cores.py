"""Cores: do many small jobs keep the machine's cores busy with fitting?

The ceiling is what the cores do with no fityard in the way: `ml.fit` one
after another in this process on one thread (what a trainer's worker runs a
small job with), times the usable cores. Against it:

- `scale`: 1,000 tiny fits (200 rows × 50 features, max_iter 5) submitted
  at once, fityard and Ray (bench/peers).
- `smallest job`: 200 rows × 5 features, max_iter 5, a burst of jobs on a
  stack with 2 and with 8 trainers; the CPU seconds every fityard process
  spent (nats-server, gateway, scheduler, trainers, their workers: /proc)
  per job, less the in-process CPU of the fit itself, is what fityard costs
  per job.

Each figure is the median of REPEATS bursts; the spread is kept with it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from fityard import Client

from .cpu import cpu_seconds, descendants, own_cpu_seconds, spent
from .measure import Figure

REPEATS = 3
TINY_PARAMS = {"max_iter": 5}


def smallest_job(path: Path) -> Path:
    """200 rows × 5 features and a binary y: the smallest real job."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((200, 5)), columns=[f"col_{i}" for i in range(5)])
    frame["y"] = rng.integers(0, 2, 200)
    frame.to_parquet(path, index=False)
    return path


def in_process(train_path: Path, fits: int, warm_up: float = 1.5) -> tuple[float, float]:
    """(fits/s, CPU seconds per fit) of ml.fit one after another on one
    thread, in this process, Parquet read and model written included, after
    `warm_up` seconds of the same fits (the first fits of a process run
    slower). One thread in every library, as a worker runs a small job
    (ml/threads.py: a limit set before scikit-learn is loaded limits
    nothing)."""
    import ml
    from ml import threads

    with tempfile.TemporaryDirectory(prefix="bench-cores-") as tmp, threads.limited(1):
        model = Path(tmp) / "m.joblib"
        warm_until = time.perf_counter() + warm_up
        while time.perf_counter() < warm_until:
            ml.fit(train_path, model, params=TINY_PARAMS)
        cpu, started = own_cpu_seconds(), time.perf_counter()
        for _ in range(fits):
            ml.fit(train_path, model, params=TINY_PARAMS)
        seconds = time.perf_counter() - started
        return fits / seconds, (own_cpu_seconds() - cpu) / fits


def burst(client: Client, dataset_id: str, jobs: int) -> tuple[float, list[str]]:
    """Submit `jobs` tiny fits at once (16 client threads) and wait for all:
    (jobs per second from the first submit to the last end, their states)."""
    started = time.time()
    with ThreadPoolExecutor(16) as pool:
        submitted = list(pool.map(lambda _: client.fit(dataset_id, **TINY_PARAMS), range(jobs)))
    # One job watched at a time: most have ended by the time they are asked.
    finished = [job.wait(timeout=600) for job in submitted]
    last_end = max(job.end_time.timestamp() for job in finished)
    return jobs / (last_end - started), [job.state for job in finished]


def stack_processes(stack) -> list[int]:
    """Every process of an embedded stack: its children and their workers."""
    return descendants([stack.pid(name) for name in stack.names()])


def measure_scale(
    client: Client, dataset_id: str, jobs: int, per_core: float, cores: int
) -> Figure:
    rates, lost = [], 0
    for _ in range(REPEATS):
        rate, states = burst(client, dataset_id, jobs)
        rates.append(rate)
        lost += len(states) - states.count("SUCCEEDED")
    return _figure(
        f"scale: {jobs} tiny fits at once",
        "fityard (defaults)",
        rates,
        per_core * cores,
        cores,
        goal=">= 0.90, none lost",
        met=statistics.median(rates) / (per_core * cores) >= 0.9 and lost == 0,
        extra={"submitted": jobs * REPEATS, "succeeded": jobs * REPEATS - lost},
    )


def measure_ray_scale(peer, train_path: Path, jobs: int, per_core: float, cores: int) -> Figure:
    rates = [jobs / peer.makespan(train_path, jobs, TINY_PARAMS) for _ in range(REPEATS)]
    return _figure(f"scale: {jobs} tiny fits at once", peer.name, rates, per_core * cores, cores)


def measure_smallest(
    stack,
    client: Client,
    dataset_id: str,
    jobs: int,
    per_core: float,
    fit_cpu: float,
    system: str | None = None,
) -> list[Figure]:
    """Throughput and fityard's CPU per job for bursts of the smallest job
    (`system`: the rows' name; by default the stack's trainers)."""
    cores = _cores()
    rates, overheads = [], []
    for _ in range(REPEATS):
        before = cpu_seconds(stack_processes(stack))
        rate, states = burst(client, dataset_id, jobs)
        after = cpu_seconds(stack_processes(stack))
        if states.count("SUCCEEDED") != jobs:
            raise RuntimeError(
                f"smallest-job burst: {states.count('SUCCEEDED')} of {jobs} succeeded"
            )
        rates.append(rate)
        overheads.append((spent(before, after) / jobs - fit_cpu) * 1000)
    system = system or f"fityard ({stack.trainers} trainers)"
    return [
        _figure(
            f"smallest job ({jobs} at once): throughput",
            system,
            rates,
            per_core * cores,
            cores,
            goal=">= 0.50",
            met=statistics.median(rates) / (per_core * cores) >= 0.5,
        ),
        Figure(
            f"smallest job ({jobs} at once): CPU per job outside the fit",
            system,
            statistics.median(overheads),
            "ms",
            fit_cpu * 1000,
            "CPU of the fit itself, in-process",
            "<= 5 ms",
            met=statistics.median(overheads) <= 5,
            extra={"repeats": overheads, "spread": [min(overheads), max(overheads)]},
        ),
    ]


def _cores() -> int:
    from services.common.config import usable_cores

    return usable_cores()


def _figure(
    benchmark: str,
    system: str,
    rates: list[float],
    ceiling: float,
    cores: int,
    goal: str = "",
    met: bool | None = None,
    extra: dict | None = None,
) -> Figure:
    ratios = [r / ceiling for r in rates]
    return Figure(
        benchmark,
        system,
        statistics.median(rates),
        "jobs/s",
        ceiling,
        f"cores' ceiling: {cores} x in-process fits/s on one thread",
        goal,
        met=met,
        extra={"repeats": rates, "spread": [min(ratios), max(ratios)], **(extra or {})},
    )
