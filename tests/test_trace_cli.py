"""`fityard trace JOB_ID` against `fityard up`: the job's spans, kept by the
stack's own receiver, printed as a tree naming every service they crossed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fityard import Client
from ml.data import make_data
from services.embedded import free_port

pytestmark = pytest.mark.stack

FITYARD = str(Path(sys.executable).parent / "fityard")


def test_trace_prints_the_jobs_tree_across_the_services(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OTEL_")
    }  # the stack's own receiver, not a collector of the caller's
    errors = (tmp_path / "up.err").open("w")
    up = subprocess.Popen(
        [FITYARD, "up", "--port", str(port), "--data-dir", str(data_dir), "--trainers", "1"],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
    )
    try:
        first = up.stdout.readline()
        assert f"localhost:{port}" in first, (tmp_path / "up.err").read_text()[-3000:]
        files = make_data(tmp_path / "seed", rows=2000)
        with Client(f"localhost:{port}") as client:
            fit = client.fit(client.upload(files["train"]), max_iter=5).wait(timeout=120)
        assert len(fit.trace_id) == 32
        command = [FITYARD, "trace", fit.id, "--address", f"localhost:{port}"]
        command += ["--data-dir", str(data_dir)]
        deadline = time.monotonic() + 20
        while True:  # spans are exported in batches, about every half second
            out = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            services = ("fityard-gateway", "fityard-scheduler", "fityard-trainer")
            if all(name in out.stdout for name in services) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lines = out.stdout.splitlines()
        assert lines[0] == f"trace {fit.trace_id} of job {fit.id} (SUCCEEDED)"
        assert lines[1].split() == ["span", "start", "took", "timeline"]
        for name in services:
            assert any(line.lstrip().startswith(name) for line in lines[2:]), out.stdout
        assert any(line.startswith("  ") for line in lines[2:])  # children under parents
        # The worker process continues the trace: reading, fitting, writing.
        for span in ("worker fit", "read dataset", "fit", "write model"):
            labels = [re.split(r"\s{2,}", line.strip())[0] for line in lines[2:]]
            assert f"fityard-trainer {span}" in labels, out.stdout

        # Where no spans are kept (a deployment's collector has them): the viewer's URL.
        command[-1] = str(tmp_path / "elsewhere")
        url = {**env, "FITYARD_TRACE_URL": "https://jaeger.example/trace/{trace_id}"}
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, env=url)
        assert out.returncode == 0, out.stderr
        assert f"see https://jaeger.example/trace/{fit.trace_id}" in out.stdout
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(30)
        errors.close()


def test_a_job_traced_nowhere_says_so(local_stack, seed_files):
    """A stack exporting no traces (OTEL_* unset, not `fityard up`): the job
    has no trace id and `fityard trace` says why, exit 1."""
    with Client(local_stack.address) as client:
        job = client.fit(client.upload(seed_files["train"]), max_iter=2)
    out = subprocess.run(
        [FITYARD, "trace", job.id, "--address", local_stack.address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert f"job {job.id} has no trace: tracing was off when it was submitted" in out.stderr
