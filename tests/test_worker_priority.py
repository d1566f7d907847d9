"""Fitting is batch work: a trainer's worker process runs at a lower CPU
priority than fityard's own processes, so on shared cores status calls,
heartbeats and dispatch go first (services/trainer/worker.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fityard import Client
from services.trainer.worker import WORKER_NICENESS
from tests.support.procs import session_members

pytestmark = pytest.mark.stack


def test_workers_fit_at_a_lower_priority_than_the_services(local_stack, seed_files):
    # A job run now: its trainer has a worker (one stopped by an earlier
    # test's cancel is started again only for the next job).
    with Client(local_stack.address) as client:
        client.fit(client.upload(seed_files["train"]), max_iter=5).wait(timeout=120)
    nice = {}  # pid -> (session, nice value)
    sessions = {local_stack.pid(name): name for name in local_stack.names()}
    for pid, fields in session_members(set(sessions)).items():
        nice[pid] = (int(fields[3]), int(fields[16]))  # session id, nice
    services = {pid: n for pid, (session, n) in nice.items() if pid == session}
    # A trainer's session also holds multiprocessing's resource tracker.
    workers = {
        pid: (session, n)
        for pid, (session, n) in nice.items()
        if pid != session and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }
    trainers = {pid for pid, name in sessions.items() if name.startswith("trainer")}
    assert workers and {session for session, _ in workers.values()} <= trainers
    for session, worker_nice in workers.values():
        assert worker_nice == services[session] + WORKER_NICENESS
    assert len(set(services.values())) == 1  # the services share one priority
