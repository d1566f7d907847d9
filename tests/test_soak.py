"""The reliability soak (bench/soak.py), small: jobs submitted over time
while trainers and the scheduler are SIGKILLed every few seconds; none may
be lost, run to two outputs, or fail for a reason other than its bad data
(or too many deaths of the process running it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tools.gen_protos import ROOT

pytestmark = pytest.mark.stack

# 20 s of submissions with a kill every ~1.5 s (about 13 kills); `python -m
# bench soak` is the long run.
JOBS = 30
SOAK_TIMEOUT = 600  # about half a minute on an idle 2-core machine; slack for a loaded one


@pytest.mark.timeout(SOAK_TIMEOUT + 60)  # the subprocess's own limit, not the suite-wide one
def test_a_small_soak_under_kills_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "soak",
            "--jobs",
            str(JOBS),
            "--rate",
            "1.5",
            "--kill-every",
            "1.5",
            "--data-dir",
            str(tmp_path / "soak"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SOAK_TIMEOUT,
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    context = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, context
    jobs, kills = report["jobs"], report["kills"]
    assert jobs["submitted"] == JOBS, context
    assert jobs["lost"] == 0, context
    assert jobs["duplicated"] == 0, context
    assert jobs["failed_unexpectedly"] == 0, context
    assert jobs["succeeded_without_output"] == 0, context
    assert (
        jobs["succeeded"] + jobs["failed_as_expected"] + jobs["failed_killed_too_often"] == JOBS
    ), context
    # Bad data failed as it should (the mix has both kinds of bad jobs).
    assert jobs["failed_as_expected"] >= 1, context
    # The chaos happened: a trainer killed while running a job, and that
    # job running again afterwards, with a measured delay.
    assert kills["trainer_running_a_job"] >= 1, context
    assert kills["outcomes"].get("rerun", 0) >= 1, context
    assert kills["outcomes"].get("NOT RERUN", 0) == 0, context
    assert kills["rerun_delay_s"]["count"] >= 1 and kills["rerun_delay_s"]["max"] is not None, (
        context
    )
    assert report["passed"] is True
    assert "PASSED" in result.stdout
