"""services/trainer/worker.py: a worker stopped or killed mid-job ends the
trainer's wait for its messages.

Found in CI: a job over its run limit was stopped, its worker outlived the
grace and was killed, and the kill closed the pipe the trainer's event loop
was waiting on. The loop never heard of it again; the trainer hung on that
job for good and every job behind it stayed queued.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pandas as pd

from services.common.config import StorageConfig
from services.common.storage import open_store
from services.trainer.worker import Task, WorkerProcess


def _long_fit(tmp_path) -> tuple[StorageConfig, Task]:
    storage = StorageConfig(backend="local", root=tmp_path / "objects")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 5)), columns=[f"col_{i}" for i in range(5)])
    frame["y"] = rng.integers(0, 2, size=200)
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    open_store(storage).write_file("datasets/ds_stop/data.parquet", path)
    task = Task(
        job_id="job_stop",
        kind="fit",
        dataset_key="datasets/ds_stop/data.parquet",
        model_key="models/job_stop/model.joblib",
        params={"max_iter": 100_000, "early_stopping": False},
    )
    return storage, task


async def _kill_while_fitting(worker: WorkerProcess, task: Task, kill) -> object:
    started = asyncio.Event()

    async def on_progress(fraction: float, message: str) -> None:
        started.set()

    run = asyncio.create_task(worker.run(task, on_progress))
    await asyncio.wait_for(started.wait(), 60)  # the fit is under way
    await kill()  # meanwhile `run` waits for the worker's next message
    return await asyncio.wait_for(run, 10)


def test_a_worker_killed_mid_job_ends_the_wait_for_it(tmp_path):
    """kill() closes the pipe before the loop could see the worker's end."""
    storage, task = _long_fit(tmp_path)
    worker = WorkerProcess(storage, threads=1)

    async def kill() -> None:
        worker.kill()

    outcome = asyncio.run(_kill_while_fitting(worker, task, kill))
    assert outcome.died and not outcome.ok


def test_a_stopped_worker_ends_the_wait_and_the_next_job_gets_a_new_one(tmp_path):
    storage, task = _long_fit(tmp_path)
    worker = WorkerProcess(storage, threads=1)
    stopped_processes = []

    async def stop() -> None:
        stopped_processes.append(worker._proc)  # how it ended
        await worker.stop()

    async def stop_then_run_again():
        outcome = await _kill_while_fitting(worker, task, stop)
        quick = Task(**{**task.__dict__, "params": {"max_iter": 2}})
        return outcome, await asyncio.wait_for(worker.run(quick, _ignore), 60)

    async def _ignore(fraction: float, message: str) -> None:
        pass

    stopped, after = asyncio.run(stop_then_run_again())
    assert not stopped.ok
    assert stopped_processes[0].exitcode == 0  # it unwound; not killed after the grace
    assert after.ok and after.rows == 200
    worker.kill()


# A library that swallows the first exception raised inside it, as numpy
# does in an attribute lookup it makes from C, while the fit carries on.
SWALLOWED_STOP = """
import os, signal, time
from services.trainer.worker import Stopped, _raise_stopped
signal.signal(signal.SIGTERM, _raise_stopped)
start = time.monotonic()
try:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
except BaseException:
    pass
try:
    while time.monotonic() - start < 10:
        time.sleep(0.01)
    print("still fitting")
except Stopped:
    print(f"stopped {time.monotonic() - start:.2f}")
"""


def test_a_stop_swallowed_by_the_jobs_code_is_raised_again():
    out = subprocess.run(
        [sys.executable, "-c", SWALLOWED_STOP], capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert out[0] == "stopped" and float(out[1]) < 2, out
