"""Scale: many tiny jobs at once; all must finish, none lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from fityard import Client

from .measure import Figure


def measure_scale(client: Client, dataset_id: str, jobs: int, bare_per_second: float) -> Figure:
    started = time.time()
    with ThreadPoolExecutor(16) as pool:
        submitted = list(pool.map(lambda _: client.fit(dataset_id, max_iter=5).id, range(jobs)))
    wanted = set(submitted)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        finished = {j.id: j for j in client.jobs() if j.id in wanted and j.done}
        if len(finished) == len(wanted):
            break
        time.sleep(0.5)
    states = [j.state for j in finished.values()]
    succeeded = states.count("SUCCEEDED")
    last_end = max(j.end_time.timestamp() for j in finished.values())
    throughput = len(finished) / (last_end - started)
    return Figure(
        f"scale: {jobs} tiny fits at once",
        "fityard (defaults)",
        throughput,
        "jobs/s",
        bare_per_second,
        "tiny fits/s in-process, one after another",
        f"all {jobs} finish, none lost",
        met=succeeded == jobs,
        extra={"submitted": jobs, "succeeded": succeeded, "finished": len(finished)},
    )
