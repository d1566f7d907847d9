"""`fityard top`'s rendering and where it looks for NATS, without a stack."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from fityard.v1 import jobs_pb2
from services.internal.v1 import records_pb2
from services.top import Lane, Snapshot, nats_url, render

NOW = 1_800_000_000.0


def _at(seconds_ago: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((NOW - seconds_ago) * 1e9))
    return stamp


def test_it_shows_the_queue_trainers_running_jobs_and_failures():
    snap = Snapshot(
        lanes=[Lane("default", 4, 2, 1)],
        trainers=[
            records_pb2.TrainerStatus(
                trainer_id="t-1",
                state="busy",
                job_id="job_a",
                cores=3,
                threads=4,
                state_time=_at(75),
            ),
            records_pb2.TrainerStatus(trainer_id="t-2", state="waiting", job_id="job_b"),
            records_pb2.TrainerStatus(trainer_id="t-3", state="idle"),
        ],
        running=[
            records_pb2.JobRecord(
                id="job_a",
                kind=jobs_pb2.JOB_KIND_FIT,
                progress=0.37,
                trainer_id="t-1",
                cores=3,
                attempts=1,
                start_time=_at(75),
                progress_message="boosting",
            ),
            records_pb2.JobRecord(
                id="job_c", kind=jobs_pb2.JOB_KIND_PREDICT, trainer_id="t-9", start_time=_at(5)
            ),
        ],
        failures=[
            records_pb2.JobRecord(
                id="job_f",
                kind=jobs_pb2.JOB_KIND_FIT,
                end_time=_at(3700),
                error="training data has no column 'y'; " + "x" * 300,
            )
        ],
    )
    text = "\n".join(render(snap, NOW, "nats://here"))
    assert "nats://here" in text
    assert "default             4      2            1" in text
    assert "TRAINERS (3: 1 busy, 1 waiting, 1 idle)" in text
    assert "t-1" in text and "job_a 3 core(s)" in text and "for 1m15s" in text
    assert "job_b for a core" in text
    running = text.split("RUNNING (2)")[1].split("RECENT FAILURES")[0]
    (line,) = [line for line in running.splitlines() if "job_a" in line]
    for shown in ("fit", "37%", "t-1", "3 core(s)", "running 1m15s", "attempt 1", "boosting"):
        assert shown in line, (shown, line)
    # a running job whose trainer is not in the list died with it
    assert "job_c  predict" in text and "trainer gone" in text.split("job_c")[1].split("\n")[0]
    failure = next(line for line in text.splitlines() if "job_f" in line)
    assert "1h01m ago" in failure and "no column 'y'" in failure and failure.endswith("…")
    assert len(failure) < 160


def test_nats_comes_from_the_flag_then_the_running_stack_then_the_environment(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("FITYARD_NATS_URL", raising=False)
    assert nats_url(None, tmp_path) == ("nats://127.0.0.1:4222", "the default")
    monkeypatch.setenv("FITYARD_NATS_URL", "nats://env:1")
    assert nats_url(None, tmp_path) == ("nats://env:1", "FITYARD_NATS_URL")
    (tmp_path / "stack.json").write_text(json.dumps({"nats_url": "nats://up:2"}))
    assert nats_url(None, tmp_path) == ("nats://up:2", str(tmp_path / "stack.json"))
    assert nats_url("nats://flag:3", tmp_path) == ("nats://flag:3", "--nats")
