"""`fityard up` as a supervisor: children that die come back (with backoff,
and the log says so) while the rest keeps serving; nats-server comes back on
the same port and store, so jobs survive; nothing outlives a killed
`fityard up`; a new `fityard up` on the same data directory carries on."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fityard import Client, FityardError
from services.embedded import EmbeddedStack, free_port, supervisor

pytestmark = pytest.mark.stack

FITYARD = str(Path(sys.executable).parent / "fityard")


def _frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 4)), columns=[f"col_{i}" for i in range(4)])
    df["y"] = (df["col_0"] + 0.3 * df["col_1"] > 0).astype(int)
    return df


# -- processes, from /proc -------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name; None if gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields


def _children(ppid: int) -> dict[str, int]:
    """The live children of `ppid` by stack name: nats, scheduler, gateway, trainer-N."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if not fields or int(fields[1]) != ppid:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"nats-server"):
            found["nats"] = int(entry.name)
        elif b"services.trainer" in argv:
            trainer_id = next(e for e in env if e.startswith(b"FITYARD_TRAINER_ID=")).split(
                b"=", 1
            )[1]
            found[trainer_id.decode()] = int(entry.name)
        elif b"services.scheduler" in argv:
            found["scheduler"] = int(entry.name)
        elif b"services.gateway" in argv:
            found["gateway"] = int(entry.name)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
            .strip()
        )
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid` (services, their worker processes, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _port_free(port: int) -> bool:
    """Nobody listens on `port`: a server could bind it now (as servers do,
    with SO_REUSEADDR, so connections closing in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _until(what: str, check, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def _jobs_once_answering(client: Client, timeout: float = 20.0) -> dict[str, str]:
    """{job id: state} once the gateway answers again (a request in flight
    when nats-server died fails after the gateway's 5 s NATS timeout)."""

    def attempt():
        try:
            return ({job.id: job.state for job in client.jobs()},)
        except FityardError:
            return None

    return _until("the gateway answers", attempt, timeout)[0]


# -- `fityard up` as a user runs it ---------------------------------------------


class Up:
    """`fityard up` in a subprocess; its stderr (the supervisor's log) is
    collected line by line."""

    def __init__(self, data_dir: Path, trainers: int = 2):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                FITYARD,
                "up",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--trainers",
                str(trainers),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.logged_at: list[float] = []  # time.monotonic() of each log line
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.proc.stdout.readline()
        if f"localhost:{self.port}" not in line:
            self.proc.kill()
            self._reader.join(5)
            raise AssertionError(f"fityard up did not start: {line}\n" + "\n".join(self.log))
        self.pid = self.proc.pid

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.logged_at.append(time.monotonic())
            self.log.append(line.rstrip("\n"))

    def children(self) -> dict[str, int]:
        return _children(self.pid)

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> float:
        """When the first log line matching `pattern` was printed."""

        def find():
            return next(
                (
                    self.logged_at[i]
                    for i, line in enumerate(list(self.log))
                    if re.search(pattern, line)
                ),
                None,
            )

        try:
            return _until(f"a log line matching {pattern!r}", find, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; log so far:\n" + "\n".join(self.log)) from None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture
def up(tmp_path):
    running: list[Up] = []

    def start(data_dir: Path | None = None, trainers: int = 2) -> Up:
        running.append(Up(data_dir or tmp_path / "data", trainers))
        return running[-1]

    yield start
    for each in running:
        each.stop()


# -- the tests --------------------------------------------------------------------


def test_a_killed_trainer_is_restarted_with_backoff_while_the_stack_keeps_serving(up):
    stack = up()
    with Client(stack.address) as client:
        train = client.upload(_frame())
        before = stack.children()
        # two trainers, and the one for small jobs (`fityard up`'s express lane)
        assert set(before) == {
            "nats",
            "scheduler",
            "gateway",
            "trainer-1",
            "trainer-2",
            "trainer-small",
        }

        killed = time.monotonic()
        os.kill(before["trainer-2"], signal.SIGKILL)
        stack.wait_for_log(r"^trainer-2 exited \(signal 9\); restarting in 0\.5 s \(restart 1\)$")
        restarted = stack.wait_for_log(r"^trainer-2 restarted \(pid \d+, restart 1\)$")
        print(f"trainer-2 restarted {restarted - killed:.2f} s after SIGKILL")
        back = _until("trainer-2 is back", lambda: stack.children().get("trainer-2"), 10)
        assert back != before["trainer-2"]

        # Dying again soon after a restart waits longer.
        os.kill(back, signal.SIGKILL)
        stack.wait_for_log(r"^trainer-2 exited \(signal 9\); restarting in 1 s \(restart 2\)$")
        # Meanwhile the rest serves: `fityard up` runs, the gateway answers, fits run.
        assert stack.proc.poll() is None
        assert train.id in {d.id for d in client.datasets()}
        assert client.fit(train, max_iter=5).wait(timeout=120).state == "SUCCEEDED"
        stack.wait_for_log(r"^trainer-2 restarted \(pid \d+, restart 2\)$")
        again = stack.children()["trainer-2"]
        assert again not in (back, before["trainer-2"])
        assert {k: v for k, v in stack.children().items() if k != "trainer-2"} == {
            k: v for k, v in before.items() if k != "trainer-2"
        }

        jobs = [client.fit(train, max_iter=5) for _ in range(4)]
        assert [job.wait(timeout=120).state for job in jobs] == ["SUCCEEDED"] * 4
        assert stack.children()["trainer-2"] == again
    assert stack.stop() == 0


def test_backoff_doubles_for_a_child_that_keeps_dying_and_resets_once_it_stays_up(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(supervisor, "RESTART_RESET_AFTER", 3.0)
    reports: list[str] = []
    with EmbeddedStack(
        tmp_path, trainers=1, predictors=1, supervise=True, report=reports.append
    ) as stack:
        assert stack.names() == ["nats", "scheduler", "trainer-1", "predictor-1", "gateway"]
        first = stack.pid("trainer-1")
        for restart, delay in [(1, "0.5"), (2, "1"), (3, "2")]:
            pid = stack.pid("trainer-1")
            os.kill(pid, signal.SIGKILL)
            _until(
                f"restart {restart}",
                lambda restart=restart: stack.restarts("trainer-1") == restart,
                10,
            )
            assert (
                f"trainer-1 exited (signal 9); restarting in {delay} s (restart {restart})"
                in reports
            )
            assert stack.pid("trainer-1") != pid
        # Up for longer than RESTART_RESET_AFTER: back to the first delay.
        time.sleep(3.5)
        os.kill(stack.pid("trainer-1"), signal.SIGKILL)
        _until("restart 4", lambda: stack.restarts("trainer-1") == 4, 10)
        assert "trainer-1 exited (signal 9); restarting in 0.5 s (restart 4)" in reports
        assert stack.restarts("nats") == stack.restarts("gateway") == 0
        assert first not in {stack.pid(name) for name in stack.names()}
    assert stack.names() == []


def test_nats_server_comes_back_on_its_port_and_store_and_jobs_survive(tmp_path):
    reports: list[str] = []
    with (
        EmbeddedStack(tmp_path, trainers=1, supervise=True, report=reports.append) as stack,
        Client(stack.address) as client,
    ):
        train = client.upload(_frame())
        done = client.fit(train, max_iter=5).wait(timeout=120)
        # At the kill: a fit of a few seconds runs on the only trainer, another waits.
        running = client.fit(train, max_iter=1500, early_stopping="false", learning_rate=0.001)
        _until("the long fit runs", lambda: running.refresh().state == "RUNNING", 30)
        queued = client.fit(train, max_iter=5)
        assert queued.refresh().state == "QUEUED"

        old = stack.process("nats")
        killed = time.monotonic()
        old.send_signal(signal.SIGKILL)
        _until("nats-server restarted", lambda: stack.restarts("nats") == 1, 10)
        print(f"nats-server restarted {time.monotonic() - killed:.2f} s after SIGKILL")
        new = stack.process("nats")
        assert new.pid != old.pid and new.args == old.args  # same -p and -sd
        assert f"-p {stack.nats_port}" in " ".join(new.args)
        assert "nats exited (signal 9); restarting in 0.5 s (restart 1)" in reports

        known = _jobs_once_answering(client)
        print(
            f"gateway answers again {time.monotonic() - killed:.2f} s after SIGKILL of nats-server"
        )
        assert known[done.id] == "SUCCEEDED"
        assert known[running.id] in ("RUNNING", "QUEUED", "SUCCEEDED")
        assert known[queued.id] in ("QUEUED", "RUNNING", "SUCCEEDED")
        # Both run to the end, from the restarted store, and new work too.
        assert client.wait(running, timeout=120).state == "SUCCEEDED"
        assert client.wait(queued, timeout=120).state == "SUCCEEDED"
        print(f"both finished {time.monotonic() - killed:.2f} s after the kill")
        assert client.fit(train, max_iter=5).wait(timeout=120).state == "SUCCEEDED"
        # The services reconnect by themselves; one caught mid-request by the
        # kill may exit on the request's timeout, and is then restarted.
        assert stack.dead_children() == []
        print("restarts:", {name: stack.restarts(name) for name in stack.names()})


def test_killing_fityard_up_takes_its_children_and_a_new_one_carries_on(up, tmp_path):
    first = up()
    with Client(first.address) as client:
        train = client.upload(_frame())
        fit = client.fit(train, max_iter=5).wait(timeout=120)
    children = first.children()
    assert len(children) == 6  # nats, scheduler, gateway, 2 trainers, the small-lane trainer
    everything = _descendants(first.pid)  # trainers' worker processes too
    nats_port = int(re.search(r"-p (\d+)", _cmdline(children["nats"]))[1])

    first.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    try:
        _until("no child left", lambda: not any(_stat(pid) for pid in everything), 10)
    except AssertionError:
        left = [f"{pid}: {_cmdline(pid)}" for pid in everything if _stat(pid)]
        raise AssertionError("still running after 10 s:\n" + "\n".join(left)) from None
    print(
        f"all {len(everything)} descendants gone {time.monotonic() - killed:.2f} s after SIGKILL of fityard up"
    )
    assert _port_free(first.port) and _port_free(nats_port)

    # The same data directory, after a crash: the job and its model are there.
    second = up()
    with Client(second.address) as client:
        assert fit.id in {job.id for job in client.jobs()}
        assert client.job(fit.id).state == "SUCCEEDED"
        assert client.predict(fit.id, train.id).wait(timeout=120).state == "SUCCEEDED"


def test_a_new_fityard_up_on_the_same_data_dir_sees_the_jobs_datasets_and_models(up, tmp_path):
    data_dir = tmp_path / "data"
    first = up(data_dir)
    frame = _frame(rows=600)
    with Client(first.address) as client:
        train = client.upload(frame.iloc[:400])
        test = client.upload(frame.iloc[400:].drop(columns=["y"]))
        fit = client.fit(train, max_iter=20).wait(timeout=120)
        jobs_before = {job.id: job.state for job in client.jobs()}
    assert first.stop() == 0

    second = up(data_dir)
    with Client(second.address) as client:
        assert {job.id: job.state for job in client.jobs()} == jobs_before
        assert {train.id, test.id} <= {d.id for d in client.datasets()}
        predictions = client.download(client.predict(fit, test).wait(timeout=120))
        assert len(predictions) == 200
        assert (predictions["y"].to_numpy() == frame.iloc[400:]["y"].to_numpy()).mean() > 0.8
    assert second.stop() == 0
