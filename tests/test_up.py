"""`fityard up`: the embedded stack in the foreground, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.embedded import free_port
from tests.support.grpcurl import grpcurl

pytestmark = pytest.mark.stack

FITYARD = str(Path(sys.executable).parent / "fityard")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            found.append(f"{pid}: {cmdline}")
    return found


def test_up_serves_until_sigterm_then_stops_every_child(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [FITYARD, "up", "--port", str(port), "--data-dir", str(data_dir), "--trainers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"localhost:{port}" in line, (
            line + proc.stderr.read() if proc.poll() is not None else line
        )
        services = grpcurl(f"localhost:{port}", "list")
        assert "fityard.v1.JobService" in services
        assert (
            len(_processes_mentioning(str(data_dir))) >= 5
        )  # nats, scheduler, gateway, 2 trainers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    assert _processes_mentioning(str(data_dir)) == []
    assert (data_dir / "nats").is_dir()  # JetStream data lives under --data-dir
