"""`fityard top --once` against a running stack: it finds the stack's NATS
from its data dir and shows what an operator needs: the queue, each
trainer's state, the running job with its trainer and cores, a failure with
its reason; a trainer that stops leaves the list."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from fityard import Client, JobFailed
from services.embedded import EmbeddedStack
from tests.support.jobs import long_fit, wait_for_state

pytestmark = pytest.mark.stack


def top(stack: EmbeddedStack) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fityard", "top", "--once", "--data-dir", str(stack.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout  # not a terminal: no screen codes
    return done.stdout


def section(text: str, title: str) -> str:
    return text.split(title, 1)[1].split("\n\n", 1)[0]


def eventually(check, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_top_shows_queue_trainers_running_jobs_and_failures(tmp_path, seed_files):
    with EmbeddedStack(tmp_path / "stack", trainers=2) as stack, Client(stack.address) as client:
        train = client.upload(seed_files["train"])
        with pytest.raises(JobFailed):
            client.fit(client.upload(seed_files["one_class_train"]), max_iter=5).wait(timeout=60)
        running = wait_for_state(long_fit(client, train.id), "RUNNING")
        # the other trainer holds the next one until a core frees; two wait in the stream
        queued = [long_fit(client, train.id) for _ in range(3)]

        def shows_it_all() -> str:
            text = top(stack)
            assert "default             2      2" in section(text, "QUEUE"), text
            trainers = section(text, "TRAINERS")
            assert "(2: 1 busy, 1 waiting, 0 idle)" in trainers, text
            busy = next(line for line in trainers.splitlines() if " busy " in line)
            assert running.id in busy and "trainer-" in busy, text
            (line,) = [x for x in section(text, "RUNNING").splitlines() if running.id in x]
            assert "fit" in line and "core(s)" in line and "attempt 1" in line, line
            failures = section(text, "RECENT FAILURES")
            assert "at least two classes in 'y'" in failures, text
            return text

        eventually(shows_it_all)
        for job in [*queued, running]:
            client.cancel(job)

        # a trainer stopped (SIGTERM) removes itself from the list
        stack.process("trainer-2").send_signal(signal.SIGTERM)

        def one_trainer_left() -> str:
            text = top(stack)
            assert "TRAINERS (1: 0 busy, 0 waiting, 1 idle)" in text, text
            assert "trainer-2" not in section(text, "TRAINERS"), text
            return text

        eventually(one_trainer_left)


def test_top_says_how_to_reach_a_stack_when_there_is_none(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fityard", "top", "--once", "--nats", "nats://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot reach NATS at nats://127.0.0.1:1 (from --nats)" in done.stderr
    assert "fityard up" in done.stderr and "Traceback" not in done.stderr
