"""Breaking a running stack the way real faults do, and checking what is
left afterwards: killing a trainer's worker process, counting a job's
stored outputs, finding scratch directories of processes that are gone.

The quick-fault settings and the output count are shared with the soak
(tools/faults.py) and re-exported here."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fityard import Client, Job
from services.common.scratch import owner_alive
from services.embedded import EmbeddedStack
from tests.support.procs import session_members
from tools.faults import fault_env, stored_outputs

__all__ = [
    "fault_env",
    "fit_of_seconds",
    "frame",
    "kill_worker",
    "leftover_scratch",
    "runs",
    "settle",
    "stored_outputs",
    "trainers",
    "wait_for_run",
    "worker_pid",
]


def frame(rows: int = 20_000, columns: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(rows, columns))
    frame = pd.DataFrame(features, columns=[f"col_{i}" for i in range(columns)])
    frame["y"] = (features[:, 0] + rng.normal(size=rows) > 0).astype(int)
    return frame


def fit_of_seconds(client: Client, dataset_id: str | None = None) -> Job:
    """A single-threaded fit of several seconds here."""
    dataset_id = dataset_id or client.upload(frame(), name="long.parquet").id
    return client.fit(dataset_id, max_iter=1500, early_stopping="false", learning_rate=0.01)


def trainers(stack: EmbeddedStack) -> list[str]:
    return [name for name in stack.names() if name.startswith("trainer-")]


def runs(stack: EmbeddedStack, job_id: str) -> list[str]:
    """The trainers that started running the job, once per run, oldest
    first (from their logs, whose lines start with a sortable time: the API
    does not name trainers)."""
    pattern = re.compile(rf"^(\S+ \S+) .*running \w+ job {job_id}\b", re.M)
    found = []
    for name in trainers(stack):
        path = stack.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        found += [(when, name) for when in pattern.findall(text)]
    return [name for _, name in sorted(found)]


def wait_for_run(stack: EmbeddedStack, job: Job, count: int, timeout: float = 60.0) -> str:
    """Wait until the job has been started `count` times and its worker is
    up; the trainer running that start."""
    started = settle(
        lambda: (lambda r: r if len(r) >= count else None)(runs(stack, job.id)),
        timeout,
        f"start {count} of {job.id}",
    )
    trainer = started[-1]
    settle(lambda: worker_pid(stack, trainer), timeout, f"the worker of {trainer}")
    return trainer


def worker_pid(stack: EmbeddedStack, trainer: str) -> int | None:
    """The pid of the trainer's worker process (multiprocessing spawn child),
    None if it has none right now."""
    for pid, _ in session_members({stack.pid(trainer)}).items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            return pid
    return None


def kill_worker(stack: EmbeddedStack, trainer: str) -> int:
    pid = worker_pid(stack, trainer)
    assert pid is not None, f"{trainer} has no worker process"
    os.kill(pid, signal.SIGKILL)
    return pid


def leftover_scratch(root: Path) -> list[str]:
    """Scratch directories whose owner process is gone."""
    if not root.exists():
        return []
    left = []
    for entry in root.iterdir():
        match = re.fullmatch(r"pid-(\d+)-start-(\d+)-ns-\d+", entry.name)
        if match and not owner_alive(int(match.group(1)), int(match.group(2))):
            left.append(entry.name)
    return left


def settle(check, timeout: float = 15.0, what: str = "condition"):
    """Poll `check()` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"{what} not reached in {timeout:.0f} s"
            return result
        time.sleep(0.1)
