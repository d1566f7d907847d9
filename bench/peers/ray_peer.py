"""Ray on one machine: what a user might pick instead of fityard.

A local cluster from `ray.init` (no dashboard, workers' logs kept out of the
driver) and `fit_job` as a plain remote function with Ray's defaults:
num_cpus=1 per task, so Ray runs as many fits at once as there are cores and
sets OMP_NUM_THREADS=1 in its workers. That default is Ray's real behaviour
and is what we measure; nothing is tuned.

Ray's worker processes are long-lived and reused, so start() makes one tiny
remote call first: the benchmarks then time jobs, not Ray's boot.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bench.cpu import descendants
from bench.peers.base import Peer
from bench.peers.tasks import fit_job

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 15.0


def _ping() -> int:
    """The warm-up task: proves a worker is up and can import this package."""
    return os.getpid()


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ray_processes() -> list[int]:
    """This driver's descendants that are Ray's (gcs_server, raylet, agents,
    `ray::` workers): never another child the benchmark harness started."""
    me = os.getpid()
    return [pid for pid in descendants([me]) if pid != me and "ray" in _cmdline(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone
    except OSError:
        return False


class RayPeer(Peer):
    name = "Ray"

    def __init__(self, num_cpus: int | None = None):
        self.num_cpus = num_cpus
        self._fit = None

    def start(self) -> RayPeer:
        import ray

        ray.init(
            num_cpus=self.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            # Workers import bench.peers.tasks and ml from the repo root
            # whatever the driver's cwd.
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
        )
        try:
            self._fit = ray.remote(fit_job)
            ray.get(ray.remote(_ping).remote(), timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """ray.shutdown() ends the local cluster this driver started; then
        make sure (gcs_server, raylet, agents and workers all descend from
        this process) and kill whatever of it lingers."""
        import ray

        self._fit = None
        procs = _ray_processes()
        ray.shutdown()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(map(_alive, procs)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in filter(_alive, procs):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def dispatch_latencies(self, train_path: Path, n: int) -> list[float]:
        import ray

        latencies = []
        for _ in range(n):
            t_submit = time.time()
            value = ray.get(self._fit.remote(str(train_path)))
            latencies.append(value["start"] - t_submit)
        return latencies

    def fit_seconds(self, train_path: Path, params: dict | None = None) -> float:
        import ray

        t0 = time.perf_counter()
        ray.get(self._fit.remote(str(train_path), params))
        return time.perf_counter() - t0

    def toy_behind_long(self, long_path: Path, long_params: dict, toy_path: Path) -> float:
        """Ray gives each task a CPU: the toy runs beside the long fit if a
        CPU is free."""
        import ray

        long = self._fit.remote(str(long_path), long_params)
        time.sleep(1.0)  # the long task starts (Ray has no cheap "is it running")
        t0 = time.perf_counter()
        ray.get(self._fit.remote(str(toy_path)))
        seconds = time.perf_counter() - t0
        ray.get(long)  # waited out, as with the other peers
        return seconds

    def makespan(
        self,
        train_path: Path,
        jobs: int,
        params: dict | None = None,
        model_dir: Path | None = None,
    ) -> float:
        """ray.get raises RayTaskError (with the worker's traceback) if any
        task failed. `params`: HistGradientBoosting keywords (the scale
        benchmark's tiny fits); `model_dir`: each task keeps its model
        there, in a file of its own, as fityard keeps every job's."""
        import ray

        paths = _model_paths(model_dir, jobs)
        t0 = time.perf_counter()
        ray.get([self._fit.remote(str(train_path), params, path) for path in paths])
        return time.perf_counter() - t0

    def one_at_a_time(
        self, train_path: Path, jobs: int, params: dict, model_dir: Path
    ) -> list[float]:
        """Seconds from just before each submit until the driver has the
        task's result (its model kept in a file), one task after another."""
        import ray

        seconds = []
        for path in _model_paths(model_dir, jobs):
            t0 = time.perf_counter()
            ray.get(self._fit.remote(str(train_path), params, path))
            seconds.append(time.perf_counter() - t0)
        return seconds


def _model_paths(model_dir: Path | None, jobs: int) -> list[str | None]:
    """A fresh file for each task's model, or None (the model is dropped)."""
    if model_dir is None:
        return [None] * jobs
    model_dir.mkdir(parents=True, exist_ok=True)
    first = len(list(model_dir.iterdir()))
    return [str(model_dir / f"model-{first + i}.joblib") for i in range(jobs)]
