"""Nothing leaks, nothing waits forever (issue 7, reliability):
- scratch directories of processes that were killed are swept, those of live
  processes kept, and a reused pid does not pass for the dead owner
  (services/common/scratch.py); the periodic sweep does both kinds of sweep;
- `Job.wait(timeout=...)` and `fityard ... --wait --timeout` give up in time
  and say where the job is (the sweep contract of the stores themselves is in
  tests/test_storage.py, on both backends)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fityard import Client
from fityard.client import JobTimeout
from services.common import scratch
from services.common.scratch import (
    ScratchOwner,
    scratch_dir,
    sweep_dead_scratch,
    sweep_periodically,
)
from services.common.storage.local import LocalStore

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[1]
FITYARD = str(Path(sys.executable).parent / "fityard")

# A process that makes its scratch dir with a job's temp files in it, says
# where, and waits to be killed.
_OWNER = """
import sys, tempfile, time
from services.common.scratch import scratch_dir

job = tempfile.mkdtemp(prefix="fityard-job_1-", dir=scratch_dir(root=sys.argv[1]))
with open(job + "/model.joblib", "wb") as f:
    f.write(b"x" * 1000)
print(scratch_dir(root=sys.argv[1]), flush=True)
time.sleep(600)
"""


def _start_owner(root: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline().strip()
    assert line, f"the scratch owner exited with {proc.wait()}"
    return proc, Path(line)


def _names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


# -- scratch directories -------------------------------------------------------------------


def test_scratch_of_killed_processes_is_swept_live_ones_kept(tmp_path):
    root = tmp_path / "scratch"
    killed, killed_dir = _start_owner(root)
    alive, alive_dir = _start_owner(root)
    mine = scratch_dir(root=root)
    try:
        owner = ScratchOwner(
            killed.pid, scratch.process_start_time(killed.pid), scratch._pid_namespace()
        )
        assert killed_dir == root / owner.name
        assert any(killed_dir.glob("fityard-job_1-*/model.joblib"))
        assert sweep_dead_scratch(root) == 0  # everyone is alive
        assert _names(root) == {killed_dir.name, alive_dir.name, mine.name}

        killed.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (
            scratch._stat_fields(killed.pid)[0] != "Z"
        ):  # killed, not reaped yet: a zombie is dead
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert sweep_dead_scratch(root) == 1
        assert _names(root) == {alive_dir.name, mine.name}
        assert any(alive_dir.glob("fityard-job_1-*/model.joblib"))  # untouched
        killed.wait(timeout=10)
        assert sweep_dead_scratch(root) == 0

        alive.kill()
        alive.wait(timeout=10)  # reaped: the pid is gone altogether
        assert sweep_dead_scratch(root) == 1
        assert _names(root) == {mine.name}  # this (live) process's own
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()


def test_a_reused_pid_does_not_keep_a_dead_owners_scratch(tmp_path):
    """The dead owner's pid now belongs to another process (here: this one),
    started at another time: the directory is the dead one's, and goes."""
    root = tmp_path / "scratch"
    mine = scratch_dir(root=root)
    me = ScratchOwner.parse(mine.name)
    assert (
        me is not None
        and me.pid == os.getpid()
        and me.start == scratch.process_start_time(os.getpid())
    )
    earlier = root / ScratchOwner(me.pid, me.start - 1, me.namespace).name
    (earlier / "fityard-job_2-x").mkdir(parents=True)
    assert scratch.owner_alive(me.pid, me.start) and not scratch.owner_alive(me.pid, me.start - 1)
    assert sweep_dead_scratch(root) == 1
    assert _names(root) == {mine.name}


def test_sweep_leaves_other_namespaces_and_unknown_entries_alone(tmp_path):
    root = tmp_path / "scratch"
    mine = scratch_dir(root=root)
    me = ScratchOwner.parse(mine.name)
    dead_pid = _dead_pid()
    dead_here = root / ScratchOwner(dead_pid, 1, me.namespace).name
    foreign = (
        root / ScratchOwner(dead_pid, 1, me.namespace + 1).name
    )  # pids there mean other processes
    for d in (dead_here, foreign, root / "notes"):
        d.mkdir()
    (root / ScratchOwner(dead_pid, 2, me.namespace).name).write_text("a file, not a scratch dir")
    assert sweep_dead_scratch(root) == 1
    assert _names(root) == {
        mine.name,
        foreign.name,
        "notes",
        ScratchOwner(dead_pid, 2, me.namespace).name,
    }


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_scratch_dir_is_private_recreated_and_only_for_live_processes(tmp_path):
    root = tmp_path / "scratch"
    mine = scratch_dir(root=root)
    assert mine.stat().st_mode & 0o777 == 0o700
    mine.rmdir()  # e.g. aged out by systemd-tmpfiles
    assert scratch_dir(root=root) == mine and mine.is_dir()
    with pytest.raises(ProcessLookupError):
        scratch_dir(pid=_dead_pid(), root=root)


def test_default_root_is_per_user_and_refused_if_planted(tmp_path, monkeypatch):
    monkeypatch.delenv(scratch.SCRATCH_DIR_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    default = tmp_path / f"fityard-scratch-{os.getuid()}"
    assert scratch.scratch_root() == default
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    default.symlink_to(elsewhere)  # someone else's trap in a shared /tmp
    with pytest.raises(PermissionError, match=scratch.SCRATCH_DIR_ENV):
        scratch_dir()
    assert list(elsewhere.iterdir()) == []
    monkeypatch.setenv(scratch.SCRATCH_DIR_ENV, str(tmp_path / "configured"))
    assert scratch_dir().parent == tmp_path / "configured"


def test_sweep_periodically_sweeps_at_once_then_every_period_and_survives_errors(tmp_path, caplog):
    store = LocalStore(tmp_path / "objects")
    store.ensure_ready()
    root = tmp_path / "scratch"
    root.mkdir()

    def leave_leftovers() -> tuple[Path, Path]:
        part = store.root / ".tmp" / f"{os.urandom(4).hex()}.part"
        part.write_bytes(b"half")
        os.utime(part, (time.time() - 7200, time.time() - 7200))  # two hours idle
        dead = root / ScratchOwner(_dead_pid(), 1, scratch._pid_namespace()).name
        dead.mkdir()
        return part, dead

    class Flaky(LocalStore):
        calls = 0

        def sweep_incomplete(self, older_than):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise OSError("the store is away")
            return super().sweep_incomplete(older_than)

    flaky = Flaky(store.root)

    async def run():
        first = leave_leftovers()
        stop = asyncio.Event()
        task = asyncio.create_task(
            sweep_periodically(flaky, every=0.2, older_than=3600, stop=stop, scratch_root=root)
        )
        await _until(lambda: not any(p.exists() for p in first))  # swept at once
        second = leave_leftovers()
        await _until(
            lambda: Flaky.calls >= 3 and not any(p.exists() for p in second)
        )  # after the failure too
        stop.set()
        await asyncio.wait_for(task, timeout=5)  # stops promptly

    with caplog.at_level(logging.INFO, logger="services.common.scratch"):
        asyncio.run(run())
    assert "sweep failed" in caplog.text and "swept 1 abandoned upload(s)" in caplog.text


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not swept in time"
        await asyncio.sleep(0.02)


def test_sweep_periodically_refuses_bad_periods():
    with pytest.raises(ValueError, match="every"):
        asyncio.run(sweep_periodically(None, every=0, older_than=1))
    with pytest.raises(ValueError, match="older_than"):
        asyncio.run(sweep_periodically(None, every=1, older_than=-1))


# -- waiting with a timeout -------------------------------------------------------------------


def _long_fit(client: Client, dataset_id: str):
    """A fit that runs for minutes unless cancelled."""
    return client.fit(dataset_id, max_iter=100000, early_stopping="false", learning_rate=0.001)


def test_wait_timeout_says_where_the_job_is_and_it_carries_on(local_stack, seed_files):
    with Client(local_stack.address) as client:
        train = client.upload(seed_files["train"])
        job = _long_fit(client, train.id)
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as raised:
                job.wait(timeout=1)
            assert 1 <= time.monotonic() - started < 10
            exc = raised.value
            assert isinstance(exc, JobTimeout) and exc.job_id == job.id and exc.timeout == 1
            state = exc.job.state
            assert state in ("QUEUED", "RUNNING") and job.state == state  # the Job is updated too
            message = str(exc)
            assert message.startswith(f"job {job.id} is still {state} ({exc.job.progress:.0%}")
            assert "after 1 s; it carries on: wait again or cancel it" in message
            if exc.job.progress_message:
                assert exc.job.progress_message in message
            assert not client.job(job).done  # giving up waiting did not stop it

            with pytest.raises(JobTimeout):
                client.wait(job.id, timeout=0.5)  # the id-only spelling too
        finally:
            client.cancel(job)
        assert client.job(job).state == "CANCELLED"


def test_cli_wait_timeout_exits_124_with_the_jobs_state(local_stack, seed_files):
    env = {k: v for k, v in os.environ.items() if k != "FITYARD_ADDRESS"}
    with Client(local_stack.address) as client:
        train = client.upload(seed_files["train"])
        argv = [FITYARD, "--address", local_stack.address]
        fit = subprocess.run(
            [
                *argv,
                "fit",
                train.id,
                "--param",
                "max_iter=100000",
                "--param",
                "early_stopping=false",
                "--param",
                "learning_rate=0.001",
                "--wait",
                "--timeout",
                "1",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        job_id = fit.stdout.split()[0] if fit.stdout.split() else ""
        try:
            assert fit.returncode == 124, f"exit {fit.returncode}\n{fit.stdout}\n{fit.stderr}"
            assert job_id.startswith("job_")
            last = fit.stderr.strip().splitlines()[-1]
            assert last.startswith(f"error: job {job_id} is still ")
            assert any(f"is still {s} (" in last for s in ("QUEUED", "RUNNING")), last
            assert "after 1 s; it carries on" in last and f"fityard cancel {job_id}" in last
            assert "Traceback" not in fit.stderr

            watch = subprocess.run(
                [*argv, "watch", job_id, "--timeout", "0.5"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert watch.returncode == 124, (
                f"exit {watch.returncode}\n{watch.stdout}\n{watch.stderr}"
            )
            assert watch.stdout.split()[0] in (
                "QUEUED",
                "RUNNING",
            )  # it printed where it was, then gave up
            assert f"error: job {job_id} is still " in watch.stderr
        finally:
            if job_id.startswith("job_"):
                client.cancel(job_id)

    usage = subprocess.run(
        [*argv, "fit", train.id, "--timeout", "1"], env=env, capture_output=True, text=True
    )
    assert usage.returncode == 2 and "--timeout needs --wait" in usage.stderr
