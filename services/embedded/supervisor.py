"""The stack's children: started, restarted with backoff, stopped in order.

A child that dies is restarted after a delay that doubles with each quick
death (RESTART_FIRST_DELAY up to RESTART_MAX_DELAY), back to the first delay
once it stayed up RESTART_RESET_AFTER seconds: a crash loop costs little,
and one crash after a long run is retried at once.

No child outlives the process that started it, even a SIGKILLed one: each
gets the parent-death signal (services/common/lifecycle.py). That signal
fires when the *thread* that forked the child ends, so every child, restarts
included, is forked by one thread of the supervisor's own ("fityard-stack"),
which lives until the children are stopped; other threads hand it calls.
"""

from __future__ import annotations

import logging
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Restart backoff: the first restart waits RESTART_FIRST_DELAY, each quick
# death after it doubles the wait up to RESTART_MAX_DELAY; a child that stayed
# up for RESTART_RESET_AFTER seconds starts again from the first delay.
RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 30.0
RESTART_RESET_AFTER = 10.0
SUPERVISE_INTERVAL = 0.1


def describe_exit(returncode: int) -> str:
    """`signal 9` for a child killed by a signal, `exit code 1` otherwise."""
    return f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen
    started: float  # time.monotonic() of the last spawn
    restarts: int = 0  # respawns so far
    # deaths in a row without staying up RESTART_RESET_AFTER: the backoff exponent
    quick_deaths: int = 0
    restart_at: float | None = None  # a respawn is due then (the child is dead and waiting)


def _backoff(kid: Child, now: float) -> float:
    """Schedule kid's next restart; the delay doubles with each quick death."""
    delay = min(RESTART_MAX_DELAY, RESTART_FIRST_DELAY * 2 ** min(kid.quick_deaths, 16))
    kid.quick_deaths += 1
    kid.restart_at = now + delay
    return delay


class Supervisor:
    """The children (by name, in start order), their logs in `log_dir`
    (<name>.log), and the thread that forks them. With `supervising` set, a
    dead child is restarted, each death and restart told to `report`."""

    def __init__(self, log_dir: Path, report: Callable[[str], None]):
        self.log_dir = log_dir
        self.report = report
        self.kids: dict[str, Child] = {}  # start order; written only by the thread
        self.supervising = False
        self.stopping = False
        self._thread: threading.Thread | None = None
        self._calls: queue.Queue = queue.Queue()

    # -- the thread ----------------------------------------------------------
    def start_thread(self) -> None:
        self.stopping = False
        self._thread = threading.Thread(target=self._run, name="fityard-stack", daemon=True)
        self._thread.start()

    def call(self, fn: Callable, *args):
        """Run fn(*args) in the thread and return its result (or raise its
        exception here)."""
        done: Future = Future()
        self._calls.put((fn, args, done))
        return done.result()

    def end(self, stop_children: Callable[[float], None], timeout: float) -> bool:
        """Stop the children (`stop_children(timeout)`, in the thread) and end
        the thread; False if it was not running. No restarts from now on."""
        self.supervising = False
        self.stopping = True
        thread = self._thread
        if thread is None:
            return False
        if thread is threading.current_thread():  # from a `report` callback
            stop_children(timeout)
            self._calls.put(None)  # the thread ends after this call
        elif thread.is_alive():
            self.call(stop_children, timeout)
            self._calls.put(None)
            thread.join()
        self._thread = None
        return True

    def _run(self) -> None:
        """Runs the calls handed to it (start, stop) and, between them,
        supervises. Every child is forked here."""
        while True:
            try:
                call = self._calls.get(timeout=SUPERVISE_INTERVAL)
            except queue.Empty:
                call = ()
            if call is None:
                return
            if call:
                fn, args, done = call
                try:
                    done.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    done.set_exception(exc)
            if self.supervising and not self.stopping:
                try:
                    self.supervise_once()
                except Exception:  # the supervisor must not die
                    log.exception("supervising the stack")

    # -- children ------------------------------------------------------------
    def supervise_once(self) -> None:
        now = time.monotonic()
        for kid in list(self.kids.values()):
            if kid.restart_at is None:
                code = kid.proc.poll()
                if code is None:
                    continue
                if now - kid.started >= RESTART_RESET_AFTER:
                    kid.quick_deaths = 0
                delay = _backoff(kid, now)
                self.report(
                    f"{kid.name} exited ({describe_exit(code)}); restarting in {delay:g} s (restart {kid.restarts + 1})"
                )
            elif now >= kid.restart_at:
                self._restart(kid, now)

    def _restart(self, kid: Child, now: float) -> None:
        restart = kid.restarts + 1
        try:
            self.spawn(kid.name, kid.argv, kid.env, note=f"restart {restart}")
        except OSError as exc:  # e.g. the binary vanished, no memory to fork
            delay = _backoff(kid, now)
            self.report(f"{kid.name} could not be restarted ({exc}); trying again in {delay:g} s")
            return
        kid.restarts, kid.restart_at = restart, None
        self.report(f"{kid.name} restarted (pid {kid.proc.pid}, restart {restart})")

    def spawn(self, name: str, argv: list[str], env: dict[str, str], note: str = "") -> None:
        if threading.current_thread() is not self._thread:
            raise RuntimeError("children are forked by the stack thread only")
        log_file = open(self.log_dir / f"{name}.log", "ab")
        if note:
            log_file.write(f"---- fityard: {note} of {name} ----\n".encode())
            log_file.flush()
        # A session of its own: Ctrl-C in the terminal reaches only `fityard up`,
        # which then stops the children in order (services before nats-server).
        # Each child sets its parent-death signal itself (stack.py says how),
        # which stops it if `fityard up` is killed outright: no preexec_fn,
        # which gRPC in this process can make abort the child.
        proc = subprocess.Popen(  # noqa: S603 - our own services and nats-server
            argv,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        kid = self.kids.get(name)
        if kid is None:
            self.kids[name] = Child(name, argv, env, proc, time.monotonic())
        else:
            kid.proc, kid.started = proc, time.monotonic()

    def stop_in_groups(self, groups: list[list[str]], timeout: float) -> None:
        """SIGTERM each group of children (names) and wait for it (SIGKILL
        after `timeout`) before the next; then forget them all."""
        for group in groups:
            procs = [self.kids[name].proc for name in group]
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in procs:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.kids.clear()

    # -- inspection ----------------------------------------------------------
    def process(self, name: str) -> subprocess.Popen:
        try:
            return self.kids[name].proc
        except KeyError:
            raise KeyError(
                f"no child named {name!r}; children: {', '.join(self.kids) or 'none'}"
            ) from None

    def dead_children(self) -> list[str]:
        return [
            f"{kid.name} (exit {kid.proc.returncode})"
            for kid in list(self.kids.values())
            if kid.proc.poll() is not None
        ]

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
