"""RQ + Redis, run the way the seed toy app ran it.

A private `redis-server` (Debian's binary; bench/setup.sh installs it) on a
free loopback port, without persistence, and `workers` plain `rq worker`
processes: rq's default forking Worker, which forks a "work horse" per job.
Nothing is tuned (no preloading, no thread limits): what we measure is the
design a user gets by following rq's docs.

Each worker runs in its own session (start_new_session) so stop() can find
and end its work horses too, even though rq puts each horse in a process
group of its own (os.setpgrp) and a killed worker would orphan it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.peers.base import Peer
from services.embedded import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
QUEUE = "bench"
JOB_FUNC = "bench.peers.tasks.fit_job"  # by reference: the horse imports it
JOB_TIMEOUT = 3600
POLL = 0.002  # seconds between status polls: tight, so polling adds ~1 ms
START_TIMEOUT = 60.0


def _session_pids(sid: int) -> list[int]:
    """Live processes in session `sid`: a worker and its work horses."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except ProcessLookupError:
                pass
    return pids


def _signal_alive(procs: list[subprocess.Popen], sig: int) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)


def _wait_exit(procs: list[subprocess.Popen], timeout: float) -> bool:
    """True once all have exited; False if some still run after `timeout`."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RQPeer(Peer):
    def __init__(self, workers: int, workdir: Path):
        self.workers = workers
        self.workdir = Path(workdir)
        self.name = f"RQ, {workers} worker(s)"
        self._redis: subprocess.Popen | None = None
        self._workers: list[subprocess.Popen] = []
        self._conn = None
        self._queue = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> RQPeer:
        from redis import Redis
        from rq import Queue

        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            port = self._start_redis()
            self._conn = Redis(host="127.0.0.1", port=port)
            self._queue = Queue(QUEUE, connection=self._conn)
            self._start_workers(f"redis://127.0.0.1:{port}")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_redis(self) -> int:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server not found on PATH: run bench/setup.sh (installs Debian's redis-server)"
            )
        from redis import Redis
        from redis.exceptions import ConnectionError as RedisConnectionError

        log = self.workdir / "redis.log"
        for _attempt in range(3):  # a port taken between probe and bind: try another
            port = free_port()
            self._redis = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                    "--logfile",
                    str(log),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
            deadline = time.monotonic() + START_TIMEOUT
            while self._redis.poll() is None and time.monotonic() < deadline:
                try:
                    if client.ping():
                        client.close()
                        return port
                except RedisConnectionError:
                    time.sleep(0.02)
            client.close()
            if self._redis.poll() is None:  # alive but silent: give up
                break
            self._redis = None  # exited (port clash?): retry on a fresh port
        self._stop_redis()
        raise RuntimeError(
            f"redis-server did not answer PING within {START_TIMEOUT:.0f}s; log:\n{_tail(log)}"
        )

    def _start_workers(self, url: str) -> None:
        from rq import Worker

        rq_bin = Path(sys.executable).parent / "rq"
        if not rq_bin.exists():
            rq_bin = Path(shutil.which("rq") or "rq")
        env = dict(os.environ)
        # The horse imports bench.peers.tasks and ml from the repo root.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        for i in range(self.workers):
            log = open(self.workdir / f"worker-{i}.log", "ab")
            try:
                self._workers.append(
                    subprocess.Popen(
                        [str(rq_bin), "worker", "--url", url, QUEUE],
                        cwd=REPO_ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            finally:
                log.close()  # the child has its own copy

        deadline = time.monotonic() + START_TIMEOUT
        while len(Worker.all(connection=self._conn)) < self.workers:
            dead = [i for i, p in enumerate(self._workers) if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"rq worker {dead[0]} exited with {self._workers[dead[0]].returncode}; log:\n"
                    + _tail(self.workdir / f"worker-{dead[0]}.log")
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"rq workers did not register within {START_TIMEOUT:.0f}s; see {self.workdir}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Warm shutdown first (SIGTERM: an idle worker exits at once), then
        rq's cold shutdown (a second signal, which rq ignores within 1 s of the
        first, kills the horse), then SIGKILL for the whole session."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._queue = None
        procs, self._workers = self._workers, []
        _signal_alive(procs, signal.SIGTERM)  # warm: an idle worker exits at once
        if not _wait_exit(procs, 10.0):
            _signal_alive(procs, signal.SIGINT)  # cold: rq kills the horse, then exits
            if not _wait_exit(procs, 5.0):
                for p in procs:
                    self._kill_session(p.pid)
                _wait_exit(procs, 5.0)
        for p in procs:  # horses left by a killed worker share its session
            self._kill_session(p.pid)
        self._stop_redis()

    @staticmethod
    def _kill_session(sid: int) -> None:
        for pid in _session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _stop_redis(self) -> None:
        p, self._redis = self._redis, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()  # no persistence configured, so it exits at once
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    # -- measurements --------------------------------------------------------

    def _enqueue(self, train_path: Path, params: dict | None = None):
        return self._queue.enqueue(JOB_FUNC, str(train_path), params, job_timeout=JOB_TIMEOUT)

    def toy_behind_long(self, long_path: Path, long_params: dict, toy_path: Path) -> float:
        """The toy job waits in the queue while the worker(s) run the long
        one: RQ's queue is first in, first out."""
        from rq.job import JobStatus

        long = self._enqueue(long_path, long_params)
        while long.get_status() not in (JobStatus.STARTED, JobStatus.FINISHED):
            time.sleep(POLL)
        t0 = time.perf_counter()
        self._wait_job(self._enqueue(toy_path))
        seconds = time.perf_counter() - t0
        self._wait_job(long)
        return seconds

    @staticmethod
    def _result(job) -> dict | None:
        """The job's return value once finished, None while it is not; raises
        with the worker's traceback if it failed."""
        from rq.job import JobStatus

        status = job.get_status()
        if status == JobStatus.FINISHED:
            result = job.latest_result()
            # The status and the result are written together, but be safe.
            return None if result is None else result.return_value
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            result = job.latest_result()
            info = result.exc_string if result is not None else "(no result stored)"
            raise RuntimeError(f"RQ job {job.id} {status.value}:\n{info}")
        return None

    def _wait_job(self, job) -> dict:
        while (value := self._result(job)) is None:
            time.sleep(POLL)
        return value

    def dispatch_latencies(self, train_path: Path, n: int) -> list[float]:
        latencies = []
        for _ in range(n):
            t_submit = time.time()
            value = self._wait_job(self._enqueue(train_path))
            latencies.append(value["start"] - t_submit)
        return latencies

    def fit_seconds(self, train_path: Path, params: dict | None = None) -> float:
        t0 = time.perf_counter()
        self._wait_job(self._enqueue(train_path, params))
        return time.perf_counter() - t0

    def makespan(self, train_path: Path, jobs: int) -> float:
        t0 = time.perf_counter()
        pending = [self._enqueue(train_path) for _ in range(jobs)]
        while pending:
            pending = [job for job in pending if self._result(job) is None]
            if pending:
                time.sleep(POLL)
        return time.perf_counter() - t0
