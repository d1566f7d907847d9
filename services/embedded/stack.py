"""EmbeddedStack: nats-server, the scheduler, the gateway, N trainers and the
predictors as child processes of this one (services/embedded/__init__.py)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc

from fityard.traces import TRACES_DIR
from services import span_store
from services.common.config import SCHEMA, SMALL_LANE, usable_cores
from services.common.lifecycle import exec_argv

from . import environment
from .ports import DistinctPorts, free_port, nats_server_binary, pool_target
from .readiness import StackError, wait_gateway, wait_predictors, wait_tcp
from .supervisor import Supervisor, describe_exit

log = logging.getLogger(__name__)

# In the data dir: where a started stack listens (EmbeddedStack.description).
STACK_FILE = "stack.json"
# The trainer that serves only the small lane (express_trainer=True).
EXPRESS_TRAINER = "trainer-small"

# What a child receives when the process that started it dies (even by
# SIGKILL; services/common/lifecycle.py). nats-server gets SIGTERM: it flushes
# its store and exits within milliseconds. The services get SIGKILL: with
# nats-server going at the same moment a graceful stop has nothing to hand
# work back to, and could wait out NATS timeouts (seconds) while holding
# ports; they are crash-safe anyway (a job is acked only once its outputs
# are stored, so an unfinished one is redelivered on the next start).
#
# Each sets it itself, first thing, none through a preexec_fn (which lets
# grpcio's at-fork hooks abort the child when this process has gRPC calls in
# flight: the span receiver, tests and benchmarks that run a stack
# in-process): the services from FITYARD_PARENT_PID
# (services/common/runtime.py), nats-server, not ours to change, through
# lifecycle's exec shim.
NATS_PARENT_DEATH_SIGNAL = signal.SIGTERM


def default_trainers() -> int:
    """One trainer per core. They share the cores through core leases: jobs
    queued together run side by side single-threaded, a lone job gets every
    core (services/trainer/cores.py)."""
    return usable_cores()


class EmbeddedStack:
    """nats-server, the scheduler, the gateway and N trainers as child processes.

    With ``supervise=True`` (what `fityard up` uses) a child that dies after
    start() is restarted with backoff (services/embedded/supervisor.py), each
    death and restart reported through `report` (default: this module's
    logger); the other children keep serving meanwhile. Ports are chosen
    once, in start(), so a restarted nats-server listens where the services
    reconnect to (with the same store directory, so queued jobs and records
    survive) and a restarted scheduler where the gateway calls it. Without
    it, a dead child stays dead (tests that kill one on purpose rely on that)
    and `dead_children()` lists it. No child outlives this process, and
    start() and stop() may be called from any thread (supervisor.py).

    The predictor pool (services/predictor), which the gateway forwards
    online predictions to and callers may reach directly, is empty by
    default: a stack for tests or benchmarks of jobs does not pay for
    processes that import scikit-learn and serve nothing; `fityard up`
    starts one per core. Each listens on a port of its own
    (`predict_addresses`, chosen in start()), and `predict_address` names
    them all as one gRPC target (`ipv4:A,B` for several), over which the
    gateway and the SDK spread calls one by one (round_robin). Sharing one
    port instead (SO_REUSEPORT) spreads connections, not calls: a client's
    one connection would use one predictor, and a few connections split
    unevenly.

    `express_trainer`: one more trainer that serves only the small lane
    (`fityard up`), so that a toy job starts at once even when every other
    trainer is busy with, or holding, a long one. `keep_traces`: trace every
    job into <data_dir>/traces for `fityard trace`, unless
    OTEL_EXPORTER_OTLP_ENDPOINT sends traces elsewhere. `metrics`: each
    service child serves Prometheus metrics (`metrics_ports`). `client_tls`:
    how to reach a gateway that serves TLS (FITYARD_TLS_* in `env`) to see
    it is up: the CA that signed it (and a client certificate).
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
        self.client_tls = client_tls
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.trainers = trainers or default_trainers()
        self.predictors = predictors
        self.storage = storage
        self.extra_env = dict(env or {})
        self.supervise = supervise
        self.express_trainer = express_trainer
        self.metrics = metrics
        self.keep_traces = keep_traces and not environment.otlp_endpoint_set(
            {**os.environ, **self.extra_env}
        )
        self.traces_dir = self.data_dir / TRACES_DIR
        self.log_dir = self.data_dir / "logs"
        self.report = report or log.warning
        self._supervisor = Supervisor(self.log_dir, lambda message: self.report(message))
        self._forget_ports()

    def _forget_ports(self) -> None:
        """The ports and addresses start() chooses, before it chose them."""
        self.nats_port = self.scheduler_port = self._span_receiver_port = 0
        self.nats_token = self.nats_address = self.nats_url = ""
        self.predict_addresses: list[str] = []
        self.predict_address = ""
        self._predict_ports: dict[str, int] = {}
        self.metrics_ports: dict[str, int] = {}  # name -> port; empty unless metrics
        self._span_receiver = None

    # -- lifecycle -----------------------------------------------------
    def start(self, timeout: float = 60.0) -> EmbeddedStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        if self.keep_traces:
            self._span_receiver = span_store.serve(
                self.traces_dir, f"127.0.0.1:{self._span_receiver_port}"
            )
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)
        self._supervisor.start_thread()
        try:
            self._supervisor.call(self._start_children, timeout)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._supervisor.supervising = self.supervise
        self._describe()
        return self

    def _choose_ports(self) -> None:
        """Chosen once: restarted children keep them. Each distinct."""
        port = DistinctPorts(self.port)
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
        self._span_receiver_port = port() if self.keep_traces else 0

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the services, wait for them to drain, then nats-server.
        No restarts from the moment it is called."""
        if not self._supervisor.end(self._stop_children, timeout):
            return
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
        return list(self._supervisor.kids)

    def process(self, name: str) -> subprocess.Popen:
        """The current process of child `name` ("nats", "scheduler",
        "gateway", "trainer-1", ...): after a restart, the new one."""
        return self._supervisor.process(name)

    def pid(self, name: str) -> int:
        return self.process(name).pid

    def restarts(self, name: str) -> int:
        """How many times child `name` was restarted."""
        self.process(name)  # KeyError for an unknown name
        return self._supervisor.kids[name].restarts

    def dead_children(self) -> list[str]:
        return self._supervisor.dead_children()

    def log_tail(self, name: str, lines: int = 30) -> str:
        return self._supervisor.log_tail(name, lines)

    # -- in the stack thread --------------------------------------------------
    def _start_children(self, timeout: float) -> None:
        self._start_nats(timeout)
        env = self._service_env()
        self._spawn_service("scheduler", "services.scheduler", env)
        for name in self._trainer_names():
            own = {"trainer_id": name}
            if name == EXPRESS_TRAINER:
                own["trainer_lanes"] = SMALL_LANE
            self._spawn_service(name, "services.trainer", env, own)
        for name, port in self._predict_ports.items():
            own = {"predictor_listen": f"localhost:{port}"}
            self._spawn_service(name, "services.predictor", env, own)
        self._spawn_service("gateway", "services.gateway", env)

    def _spawn_service(
        self, name: str, module: str, env: dict[str, str], own: dict[str, object] | None = None
    ) -> None:
        """Start `module` as child `name` with the shared `env` and the
        settings of this child alone (`own`, attribute paths; its metrics
        port too, when it has one)."""
        own = dict(own or {})
        if name in self.metrics_ports:
            own["metrics_listen"] = f"127.0.0.1:{self.metrics_ports[name]}"
        env = {**env, **SCHEMA.to_env(own)}
        self._supervisor.spawn(name, [sys.executable, "-m", module], env)

    def _stop_children(self, timeout: float) -> None:
        # Trainers first, while the scheduler still folds the hand-backs of
        # the jobs they were running, then the other services, then
        # nats-server.
        names = list(self._supervisor.kids)
        trainers = [name for name in names if name in self._trainer_names()]
        services = [name for name in names if name != "nats" and name not in trainers]
        nats = [name for name in names if name == "nats"]
        self._supervisor.stop_in_groups([trainers, services, nats], timeout)

    def _start_nats(self, timeout: float) -> None:
        # The same port and store directory on every (re)start: the services
        # reconnect by themselves and JetStream's file store keeps the
        # streams, consumers and KV records (nats-server takes no lock on
        # -sd and recovers its files after a SIGKILL).
        config = self.data_dir / "nats.conf"
        config.touch(mode=0o600)
        config.write_text(f"authorization {{ token: {json.dumps(self.nats_token)} }}\n")
        store = str(self.data_dir / "nats")
        argv = [nats_server_binary(), "-c", str(config), "-js", "-sd", store]
        argv += ["-a", "127.0.0.1", "-p", str(self.nats_port)]
        argv = exec_argv(argv, NATS_PARENT_DEATH_SIGNAL, os.getpid())
        self._supervisor.spawn("nats", argv, environment.program_env())
        nats = self._supervisor.process("nats")
        if not wait_tcp(self.nats_port, timeout, alive=lambda: nats.poll() is None):
            status = (
                "" if nats.poll() is None else f" (it exited: {describe_exit(nats.returncode)})"
            )
            raise StackError(f"nats-server did not start{status}:\n{self.log_tail('nats')}")

    def _service_env(self) -> dict[str, str]:
        settings = {
            "nats_url": self.nats_address,
            "nats_token": self.nats_token,
            "storage.backend": self.storage,
            "storage.root": self.data_dir / "objects",
            "scheduler_listen": f"127.0.0.1:{self.scheduler_port}",
            "scheduler_address": f"127.0.0.1:{self.scheduler_port}",
            "gateway_listen": f"localhost:{self.port}",
            "predictor_address": self.predict_address,
            # Its predictors listen on loopback, as the gateway does: a
            # caller of the gateway can reach them, and the SDK goes there.
            "public_predict_address": self.predict_address,
            "core_leases_dir": str(self.data_dir / "cores"),
            # Workers' temp files, swept when their worker dies.
            "scratch_dir": str(self.data_dir / "scratch"),
        }
        receiver = self._span_receiver_port if self.keep_traces else None
        return environment.service_env(
            settings=settings, span_receiver_port=receiver, extra_env=self.extra_env
        )

    def _trainer_names(self) -> list[str]:
        names = [f"trainer-{i + 1}" for i in range(self.trainers)]
        return [*names, EXPRESS_TRAINER] if self.express_trainer else names

    def _predictor_names(self) -> list[str]:
        return [f"predictor-{i + 1}" for i in range(self.predictors)]

    # -- readiness --------------------------------------------------------------
    def _wait_ready(self, timeout: float) -> None:
        wait_gateway(self.address, timeout, self.client_tls, self.dead_children, self.log_tail)
        predictors = dict(zip(self._predict_ports, self.predict_addresses, strict=True))
        wait_predictors(predictors, timeout, self.client_tls, self.log_tail)
