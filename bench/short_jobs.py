"""Short jobs against Ray: what a user who launches many tiny or mistaken
jobs waits for.

The smallest real job (200 rows × 5 features, max_iter 5: bench/cores.py's
smallest_job), the Parquet read included and each job's model kept in a
file of its own (fityard keeps every job's model in its store; Ray's tasks
are given a path each):

- one at a time: seconds from just before the submit call until the client
  knows the job succeeded (fityard: `Client.fit(...).wait()`; Ray:
  `ray.get(task.remote(...))`), p50 of 50 jobs (`make bench`); the figure is
  the median of REPEATS such p50s, against one in-process `ml.fit`.
- 300 at once: jobs/s from the first submit to the last end, against the
  cores' ceiling (bench/cores.py measures fityard's; Ray's is here).

`make bench` runs both beside the rest; `python -m bench --only short` runs
just these rows (and fityard's CPU per job), fityard's and Ray's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from .cores import REPEATS, TINY_PARAMS, _figure
from .measure import Figure

ONE_AT_A_TIME_BENCHMARK = "smallest job, one at a time: submit -> succeeded p50"


def fityard_one_at_a_time(client, dataset_id: str, jobs: int) -> list[float]:
    """Seconds from submit until the client knows each job succeeded."""
    seconds = []
    for _ in range(jobs):
        t0 = time.perf_counter()
        job = client.fit(dataset_id, **TINY_PARAMS).wait()
        seconds.append(time.perf_counter() - t0)
        if job.state != "SUCCEEDED":
            raise RuntimeError(f"smallest job one at a time: {job.id} {job.state}")
    return seconds


def measure_one_at_a_time(system: str, latencies, jobs: int, fit_seconds: float) -> Figure:
    """The median of REPEATS p50s of `latencies(jobs)` (seconds each)."""
    p50s = [statistics.median(latencies(jobs)) * 1000 for _ in range(REPEATS)]
    return Figure(
        ONE_AT_A_TIME_BENCHMARK,
        system,
        statistics.median(p50s),
        "ms",
        fit_seconds * 1000,
        "one in-process ml.fit, Parquet read and model written",
        extra={"repeats": p50s, "spread": [min(p50s), max(p50s)], "jobs": jobs},
    )


def measure_ray_short(
    peer,
    train_path: Path,
    bursts: int,
    one_at_a_time: int,
    per_core: float,
    cores: int,
    model_dir: Path,
) -> list[Figure]:
    """Ray's rows: the smallest job one at a time and `bursts` at once."""
    one = measure_one_at_a_time(
        peer.name,
        lambda jobs: peer.one_at_a_time(train_path, jobs, TINY_PARAMS, model_dir / "one"),
        one_at_a_time,
        1 / per_core,
    )
    rates = [
        bursts / peer.makespan(train_path, bursts, TINY_PARAMS, model_dir / "burst")
        for _ in range(REPEATS)
    ]
    burst = _figure(
        f"smallest job ({bursts} at once): throughput", peer.name, rates, per_core * cores, cores
    )
    return [one, burst]
