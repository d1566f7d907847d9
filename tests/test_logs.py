"""The services' JSON log lines, read from a running stack: every line is a
JSON object naming its service and level, and a job's lines in the gateway,
the scheduler and the trainer carry its job_id (and its trace_id, once jobs
carry theirs)."""

from __future__ import annotations

import json

import pytest

from fityard import Client
from fityard.v1 import jobs_pb2
from ml.data import make_data
from services.embedded import EmbeddedStack

pytestmark = pytest.mark.stack

SERVICES = {"gateway": "gateway", "scheduler": "scheduler", "trainer-1": "trainer"}
JOBS_CARRY_TRACES = "trace_id" in jobs_pb2.Job.DESCRIPTOR.fields_by_name


def _lines(stack: EmbeddedStack, name: str) -> list[dict]:
    text = (stack.log_dir / f"{name}.log").read_text()
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{name}.log has a line that is not JSON: {line!r}") from None
    return lines


def test_every_line_is_json_and_a_jobs_lines_carry_its_id(tmp_path):
    files = make_data(tmp_path / "seed", rows=2000)
    stack = EmbeddedStack(
        tmp_path / "stack",
        trainers=1,
        env={"FITYARD_LOG_FORMAT": "json"},
        keep_traces=JOBS_CARRY_TRACES,  # traced into the stack's own receiver
    )
    with stack:
        with Client(stack.address) as client:
            fit = client.fit(client.upload(files["train"]), max_iter=5).wait(timeout=120)
    # stop() has drained the services: their logs are complete
    for name, service in SERVICES.items():
        lines = _lines(stack, name)
        assert lines, f"{name}.log is empty"
        for line in lines:
            assert line["service"] == service, line
            assert line["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
            assert {"time", "logger", "message"} <= line.keys(), line
        about_job = [line for line in lines if line.get("job_id") == fit.id]
        assert about_job, f"no line of {name} names {fit.id}:\n" + "\n".join(map(str, lines))
        if JOBS_CARRY_TRACES:
            traced = [line for line in about_job if line.get("trace_id") == fit.trace_id]
            assert traced, f"no line of {name} about {fit.id} names its trace {fit.trace_id}"
