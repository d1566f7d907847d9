"""The trainer's worker process: where fit and predict actually run.

It is a separate, long-lived process so that
- pandas and scikit-learn are imported once per trainer, not once per job;
- a job can be stopped at once (cancellation, shutdown) by signalling the
  process, which no thread can offer: SIGTERM unwinds the job (its spans end,
  marked stopped, and are exported; its temp files go), SIGKILL follows if it
  does not exit within STOP_GRACE_SECONDS; a new worker is started after that;
- a crash or out-of-memory kill in scikit-learn fails one job, not the trainer.
It reads its input from the store and writes its outputs there itself, so only
small messages cross the pipe: the task, progress reports and the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from opentelemetry.trace import StatusCode

from services.common import logs
from services.common.config import Config, StorageConfig
from services.common.errors import internal_error
from services.common.fit_metrics import fit_metrics
from services.common.jobs import FAILED_INTERNAL, FAILED_INVALID_DATA, FAILED_PROCESS_DIED
from services.common.lifecycle import die_with_parent
from services.common.resources import JOBS
from services.common.scratch import scratch_dir, sweep_dead_scratch
from services.common.telemetry import flush, setup_tracing
from services.common.tracing import context_of, tracer

log = logging.getLogger(__name__)

# How long a stopped worker may take to unwind its job and export its spans
# (a bounded flush, below) before it is killed. Python reaches the signal
# handler between scikit-learn's boosting rounds, so this is rarely waited.
STOP_GRACE_SECONDS = 3.0
# Of which the span export may take at most this long.
STOP_FLUSH_SECONDS = 1.0
# Added to a worker's nice value (lower CPU priority): see worker_main.
WORKER_NICENESS = 10


class Stopped(BaseException):
    """Raised in the worker by SIGTERM: the trainer is stopping the job
    (cancelled, handed back, timed out, or a newer attempt took over).

    A BaseException so that no `except Exception` on the job's path takes it
    for an error of the job; unwinding ends the job's spans with an error
    status (in Jaeger the stopped attempt is a complete span, not a child
    whose parent never arrives) and removes its temp files."""


# Set by SIGTERM. The Stopped it raises can come out as another error, or
# not at all: numpy turns an exception raised inside its buffer parsing
# into a ValueError, and clears one raised in an attribute lookup it makes
# from C (seen: 4 of 40 stops mid-fit left the fit running until the
# trainer's kill). So the worker checks the flag before reporting a job,
# and raises the stop again until it reaches worker_main.
_stop_requested = threading.Event()
_stop_arrived = threading.Event()  # it reached worker_main
STOP_REPEAT_SECONDS = 0.25


def _raise_stopped(signum, frame) -> None:
    if not _stop_requested.is_set():
        _stop_requested.set()
        threading.Thread(target=_repeat_stop, name="stop", daemon=True).start()
    raise Stopped(f"stopped by the trainer (signal {signum})")


def _repeat_stop() -> None:
    while not _stop_arrived.wait(STOP_REPEAT_SECONDS):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)


def _stopped_meanwhile(exc: BaseException | None = None) -> None:
    """Raise Stopped if the trainer stopped this job: whatever the job's code
    made of the signal, the worker reports nothing and exits, instead of
    logging a bogus internal error or waiting for its kill."""
    if _stop_requested.is_set():
        raise Stopped(
            "stopped by the trainer (the job's code caught the signal or made it another error)"
        ) from exc


@dataclass
class Task:
    """What the worker needs to run one job: ids, store keys, parameters."""

    job_id: str
    kind: str  # "fit" | "predict"
    dataset_key: str
    model_key: str
    predictions_key: str = ""
    params: dict = field(default_factory=dict)
    # Cores this job may use (scikit-learn's OpenMP threads).
    threads: int = 1
    # Fit jobs: more distinct values of y than this is a user error.
    max_classes: int = 1000
    # The trainer's span for this job (W3C traceparent): the worker's spans
    # are its children, in the job's trace. "" when not tracing.
    traceparent: str = ""
    # Predict jobs: the model (its fit job) and the SHA-256 its file had
    # when its trainer wrote it.
    model_id: str = ""
    model_sha256: str = ""
    # Predict jobs: write the class probabilities beside `y`.
    probabilities: bool = False


@dataclass
class Outcome:
    ok: bool
    rows: int = 0
    error: str = ""
    # The worker process died (killed, out of memory): worth another try,
    # unlike an error the job itself raised.
    died: bool = False
    # Why it failed (services/common/jobs.py: FAILURE_REASONS).
    reason: str = ""
    # A fit's feature columns, in the model's order.
    features: list[str] = field(default_factory=list)
    # A fit's model file, as written to the store.
    model_sha256: str = ""
    # A fit's fityard.v1.FitMetrics, serialized (a message crosses the pipe
    # pickled; bytes keep the worker and trainer free of each other's types).
    metrics: bytes = b""


def _run(task: Task, store, progress: Callable[[float, str], None]) -> Outcome:
    """Run one task in the worker; return what the job's record is to get:
    the number of rows processed and, for a fit, the model's feature
    columns (predicts are checked against them at submission), the SHA-256
    of the model file it wrote and its metrics."""
    import ml

    # Temp files go in this process's scratch directory: if the worker is
    # killed mid-job, the trainer's sweep removes them (services/common/scratch.py).
    # The local store needs none: it reads its files in place and takes a
    # new file by renaming it (ObjectStore.new_file), which saved a small
    # job a temp directory and a copy of its output (2-3 ms of 15).
    span = tracer.start_as_current_span
    scratch = scratch_dir()
    with contextlib.ExitStack() as inputs:  # local copies, kept until the job is done
        if task.kind == "fit":
            with span("read dataset", attributes={"fityard.object.key": task.dataset_key}):
                train_path = inputs.enter_context(store.local_copy(task.dataset_key, dir=scratch))
            with store.new_file(task.model_key, dir=scratch) as model:
                with span("fit", attributes={"fityard.cores": task.threads}) as fitting:
                    summary = ml.fit(
                        train_path,
                        model.path,
                        params=ml.to_sklearn_kwargs(task.params),
                        progress=progress,
                        max_classes=task.max_classes,
                    )
                    fitting.set_attributes(
                        {
                            "fityard.rows": summary.rows,
                            "fityard.features": len(summary.features),
                            "fityard.classes": len(summary.classes),
                            "fityard.max_iter": int(task.params.get("max_iter", 100)),
                        }
                    )
                progress(0.97, "storing the model")
                with span("write model", attributes={"fityard.object.key": task.model_key}):
                    model.keep()
            return Outcome(
                ok=True,
                rows=summary.rows,
                features=[str(name) for name in summary.features],
                model_sha256=summary.model_sha256,
                metrics=fit_metrics(summary).SerializeToString(),
            )
        return _predict(task, store, progress, scratch, inputs)


def _predict(
    task: Task,
    store,
    progress: Callable[[float, str], None],
    scratch: Path,
    inputs: contextlib.ExitStack,
) -> Outcome:
    """Run a predict task, its local copies (in `scratch`) kept on
    `inputs`. The model file is loaded only if it is the one its fit wrote
    (the digest the fit recorded, checked by ml.artifact.load), else
    ModelAltered: joblib unpickles it, and a pickle can run any code."""
    import ml

    span = tracer.start_as_current_span
    with span("read model and dataset", attributes={"fityard.object.key": task.dataset_key}):
        model_path = inputs.enter_context(store.local_copy(task.model_key, dir=scratch))
        data_path = inputs.enter_context(store.local_copy(task.dataset_key, dir=scratch))
    with store.new_file(task.predictions_key, dir=scratch) as predictions:
        with span("predict", attributes={"fityard.cores": task.threads}) as predicting:
            summary = ml.predict(
                model_path,
                data_path,
                predictions.path,
                progress=progress,
                probabilities=task.probabilities,
                sha256=task.model_sha256,
                name=JOBS.name(task.model_id),
            )
            predicting.set_attribute("fityard.rows", summary.rows)
        progress(0.97, "storing the predictions")
        with span("write predictions", attributes={"fityard.object.key": task.predictions_key}):
            predictions.keep()
    return Outcome(ok=True, rows=summary.rows)


def worker_main(conn: Connection, storage: StorageConfig, threads: int, trainer_pid: int) -> None:
    """Entry point of the worker process: import once, then serve tasks."""
    # A worker never outlives its trainer: a SIGKILLed trainer's job is
    # redelivered elsewhere, and an orphan fit would burn cores nobody holds.
    die_with_parent(signal.SIGKILL, parent_pid=trainer_pid)
    # Fitting is batch work: where it shares cores with fityard's own
    # processes (`fityard up`, a trainer's own event loop) they go first, so
    # status calls, heartbeats and dispatch stay quick while every core fits.
    os.nice(WORKER_NICENESS)
    # Its lines go to the trainer's stderr, in the trainer's format.
    config = Config.from_env()
    logs.configure("trainer", config.log_level, config.log_format)
    tracing = setup_tracing("trainer")
    from ml import threads as ml_threads
    from services.common.storage import open_store
    from services.trainer.memory import return_freed_memory

    return_freed_memory()  # before the first job's allocations
    # The heavy import (pandas, sklearn) is paid once here, and so is finding
    # the thread pools (OpenMP, BLAS): it scans the process's loaded
    # libraries (it was 15 % of a tiny job's CPU when done per job).
    pools = ml_threads.controller()
    limits = pools.limit(limits=threads)  # noqa: F841 - kept for the process's life
    store = open_store(storage)
    signal.signal(signal.SIGTERM, _raise_stopped)
    conn.send(("ready", os.getpid()))
    try:
        _serve(conn, store, tracing, pools)
    except Stopped:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a repeat must not cut the flush short
        _stop_arrived.set()
        _flush(tracing, wait=STOP_FLUSH_SECONDS)  # the stopped job's spans


def _serve(conn: Connection, store, tracing: bool, pools) -> None:
    """Run the tasks the trainer sends until it goes away; `pools` is the
    process's threadpoolctl.ThreadpoolController."""
    from ml import threads as ml_threads

    while True:
        try:
            task = conn.recv()
        except EOFError:
            return  # the trainer went away
        try:
            with (
                ml_threads.limited(task.threads, pools),
                logs.job_context(task.job_id),
                tracer.start_as_current_span(
                    f"worker {task.kind}", context=context_of(task.traceparent)
                ) as span,
            ):
                try:
                    outcome = _run(
                        task,
                        store,
                        lambda fraction, message: conn.send(("progress", fraction, message)),
                    )
                except Stopped as exc:  # OTel marks only Exceptions as errors
                    span.set_status(StatusCode.ERROR, str(exc))
                    raise
        except Exception as exc:  # noqa: BLE001 - _failure says what it was
            _stopped_meanwhile(exc)
            outcome = _failure(task, exc)
        _stopped_meanwhile()
        _flush(tracing)  # a failed job's spans too
        conn.send(("done", outcome))


def _failure(task: Task, exc: Exception) -> Outcome:
    """The Outcome of a job that raised `exc`: the user's data error as it
    is; anything else is ours, logged (in full under an error id)."""
    import ml
    from ml.artifact import ModelAltered

    if isinstance(exc, ml.DataError):
        return Outcome(ok=False, error=str(exc), reason=FAILED_INVALID_DATA)
    with logs.job_context(task.job_id):
        if isinstance(exc, ModelAltered):
            log.error("job %s: %s", task.job_id, exc)
            return Outcome(ok=False, error=str(exc), reason=FAILED_INTERNAL)
        error_id, error = internal_error("while running the job")
        log.error("%s: job %s failed in the worker", error_id, task.job_id, exc_info=exc)
    return Outcome(ok=False, error=error, reason=FAILED_INTERNAL)


def _flush(tracing: bool, wait: float = 2.0) -> None:
    """Export the job's spans before reporting it done: a worker killed
    later must not take them with it (bounded: telemetry.flush)."""
    if tracing:
        flush(wait)


class WorkerProcess:
    """Owns one worker process; restarts it after it is killed or dies."""

    def __init__(self, storage: StorageConfig, threads: int):
        self.storage = storage
        self.threads = threads
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None
        self._conn: Connection | None = None
        # While a message is awaited: the loop, the pipe's descriptor and
        # the future its readability completes (see _receive).
        self._waiting: tuple[asyncio.AbstractEventLoop, int, asyncio.Future] | None = None

    async def start(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=worker_main,
            args=(child, self.storage, self.threads, os.getpid()),
            name="fityard-worker",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent
        message = await self._receive()
        log.info("worker process %s ready (%d threads)", message[1], self.threads)

    async def run(
        self, task: Task, on_progress: Callable[[float, str], asyncio.Future | None]
    ) -> Outcome:
        """Run a task; progress reports are passed to `on_progress`."""
        await self.start()
        if self._conn is None:  # start() just made one: a bug if not
            raise RuntimeError("the worker process has no pipe after starting")
        self._conn.send(task)
        while True:
            try:
                message = await self._receive()
            except (EOFError, OSError):
                code = self._reap()
                reason = (
                    f"killed by signal {-code}, most likely out of memory"
                    if code is not None and code < 0
                    else f"exit code {code}"
                )
                return Outcome(
                    ok=False,
                    error=f"the training process died ({reason})",
                    died=True,
                    reason=FAILED_PROCESS_DIED,
                )
            if message[0] == "progress":
                await on_progress(message[1], message[2])
            elif message[0] == "done":
                return message[1]

    async def stop(self) -> None:
        """Stop the running job, letting it unwind (SIGTERM: its spans end
        and are exported), killing it after STOP_GRACE_SECONDS; the next
        run() starts a fresh worker."""
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()
            await asyncio.to_thread(proc.join, STOP_GRACE_SECONDS)
        self.kill()

    def kill(self) -> None:
        """Stop the running job now (no unwinding: for when the trainer
        itself is going); the next run() starts a fresh worker."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
        self._reap()

    async def _receive(self):
        """The worker's next message, waited for on the event loop (the pipe
        readable), not in a thread: a small job's handful of messages then
        cost no thread hand-offs. A message is written whole, so reading it
        once the pipe is readable waits at most for the rest of it; a worker
        gone, or its pipe closed by a stop or a kill, is an EOFError."""
        conn = self._conn
        if conn is None:
            raise EOFError("the worker's pipe is closed")
        if not conn.poll():
            loop = asyncio.get_running_loop()
            readable = loop.create_future()
            fd = conn.fileno()
            loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
            self._waiting = (loop, fd, readable)
            try:
                await readable
            finally:
                self._stop_waiting()
        return conn.recv()

    def _stop_waiting(self) -> None:
        """Take the pipe off the event loop and wake whoever waits on it.
        Called before the pipe closes: the kernel drops a closed descriptor
        from the loop's poll without a wake-up, so a wait left registered
        would never end (a run limit's stop hung a trainer that way when the
        worker outlived its grace), and a new worker's pipe could reuse the
        stale registration."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            loop, fd, readable = waiting
            loop.remove_reader(fd)
            if not readable.done():
                readable.set_exception(EOFError("the worker's pipe was closed"))

    def _reap(self) -> int | None:
        self._stop_waiting()
        proc, conn = self._proc, self._conn
        self._proc = None
        self._conn = None
        code = None
        if proc is not None:
            proc.join(timeout=5)
            code = proc.exitcode
            # A killed worker could not remove its temp files (a dataset
            # copy can be gigabytes): its scratch directory goes now.
            sweep_dead_scratch()
        if conn is not None:
            conn.close()
        return code
