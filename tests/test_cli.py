"""The `fityard` command as a user runs it (the installed console script, in
a subprocess) against a real stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fityard import Client
from services.embedded import free_port
from tests.support.jobs import LONG_FIT, cores_taken

pytestmark = pytest.mark.stack

FITYARD = str(Path(sys.executable).parent / "fityard")
SEED_FILES = {"train.parquet", "test.parquet", "BAD_train.parquet", "BAD_test.parquet"}


def run(*args, address: str | None = None, env_address: str | None = None, program=(FITYARD,)):
    """Run the CLI; the gateway comes from $FITYARD_ADDRESS or --address."""
    env = {k: v for k, v in os.environ.items() if k != "FITYARD_ADDRESS"}
    if env_address:
        env["FITYARD_ADDRESS"] = env_address
    argv = [*program, *(["--address", address] if address else []), *map(str, args)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def failed(result: subprocess.CompletedProcess) -> str:
    """The error line of a command that should fail cleanly (exit 1, no traceback)."""
    assert result.returncode == 1, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    return last


@pytest.fixture(scope="module")
def fityard(stack):
    """Run a command against the test stack via $FITYARD_ADDRESS."""
    return lambda *args: run(*args, env_address=stack.address)


@pytest.fixture(scope="module")
def data(fityard, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cli-data")
    out = ok(fityard("make-data", directory, "--rows", 2000, "--seed", 1))
    written = [Path(line) for line in out.splitlines()]
    assert {p.name for p in written} == SEED_FILES
    assert all(p.parent == directory and p.stat().st_size > 0 for p in written)
    return directory


def upload(fityard, path: Path) -> str:
    line = ok(fityard("upload", path))
    dataset_id = line.split()[0]
    assert dataset_id.startswith("ds_")
    assert f"{pq.ParquetFile(path).metadata.num_rows} rows" in line
    assert f"{len(pq.read_schema(path).names)} columns" in line
    return dataset_id


def test_upload_fit_predict_download(fityard, data, tmp_path):
    train_id = upload(fityard, data / "train.parquet")
    assert train_id in ok(fityard("datasets"))

    fit_id = ok(fityard("fit", train_id, "--param", "max_iter=30", "--wait")).split()[0]
    assert fit_id.startswith("job_")
    status = ok(fityard("status", fit_id))
    assert "SUCCEEDED" in status and "max_iter=30" in status and train_id in status

    test_id = upload(fityard, data / "test.parquet")
    pred_id = ok(fityard("predict", fit_id, test_id, "--wait")).split()[0]
    assert pred_id.startswith("job_")

    predictions = tmp_path / "predictions.parquet"
    ok(fityard("download", pred_id, "-o", predictions))
    frame = pd.read_parquet(predictions)
    assert list(frame.columns) == ["y"]
    assert len(frame) == pq.ParquetFile(data / "test.parquet").metadata.num_rows

    model = tmp_path / "model.joblib"
    ok(fityard("download", fit_id, "-o", model, "--output", "model"))
    assert model.stat().st_size > 0

    listed = ok(fityard("jobs"))
    assert listed.index(pred_id) < listed.index(fit_id)  # newest first


def _watch(stack, job_id: str, timeout: float) -> subprocess.Popen:
    """`fityard watch JOB`, its lines read as they come; bounded by its
    --timeout, should nothing come."""
    return subprocess.Popen(
        [FITYARD, "watch", job_id, "--timeout", str(timeout)],
        env={**os.environ, "FITYARD_ADDRESS": stack.address},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_follows_a_job_to_the_end(stack, fityard, data):
    train_id = upload(fityard, data / "train.parquet")
    with Client(stack.address) as client, cores_taken(client, train_id):
        # Every core busy: the job is QUEUED when the watch starts (a batch
        # job waits for a free core; a small one would run at once). A short
        # fit, longer than the 50 ms a small job's start is held for its end
        # (test_workflow's watch test says why): 100 rounds.
        job_id = ok(
            fityard("fit", train_id, "--priority", "batch", "--param", "max_iter=100")
        ).strip()
        assert job_id.startswith("job_")  # without --wait only the id is printed
        watch = _watch(stack, job_id, 90)
        first = watch.stdout.readline()
    out, err = watch.communicate(timeout=120)
    assert watch.returncode == 0, err
    lines = [first.rstrip("\n"), *out.splitlines()]
    states = [line.split()[0] for line in lines]
    assert states[0] == "QUEUED" and states[-1] == "SUCCEEDED"
    assert lines[-1].split()[:2] == ["SUCCEEDED", "100%"]
    assert states == sorted(states, key=["QUEUED", "RUNNING", "SUCCEEDED"].index)
    assert "RUNNING" in states  # the start is shown, however short the run (beyond the hold)
    assert len(lines) == len(set(lines))  # a line per change, no repeats


def test_watch_shows_how_far_a_running_job_has_come(stack, fityard, data):
    """The run is shown as it happens: RUNNING lines with progress on the
    way, saying how far the boosting has come (ml.fit reads sklearn's
    rounds). The job runs until cancelled, so this holds on any machine."""
    train_id = upload(fityard, data / "train.parquet")
    params = [f"{name}={value}" for name, value in LONG_FIT.items()]
    job_id = ok(fityard("fit", train_id, *[a for p in params for a in ("--param", p)])).strip()
    watch = _watch(stack, job_id, 60)
    lines = []
    for line in watch.stdout:  # until a round is shown; --timeout bounds it
        lines.append(line.rstrip("\n"))
        if line.startswith("RUNNING") and "boosting round" in line:
            break
    ok(fityard("cancel", job_id))
    out, err = watch.communicate(timeout=120)
    lines += out.splitlines()
    assert watch.returncode == 1 and f"job {job_id} was cancelled" in err
    running = [line for line in lines if line.startswith("RUNNING")]
    assert any(
        0 < int(line.split()[1].rstrip("%")) < 100 and "of 100,000" in line for line in running
    ), lines
    states = [line.split()[0] for line in lines]
    assert states[-1] == "CANCELLED"
    assert states == sorted(states, key=["QUEUED", "RUNNING", "CANCELLED"].index)
    assert len(lines) == len(set(lines))


def test_a_fit_on_bad_train_is_refused_at_once_naming_y(fityard, data):
    bad_id = upload(fityard, data / "BAD_train.parquet")
    result = fityard("fit", bad_id, "--wait")
    assert "no column 'y'" in failed(result)
    assert result.stdout == ""  # no job was made


def test_a_failing_fit_exits_1_with_the_reason(fityard, data):
    import pandas as pd

    one_class = data / "one_class.parquet"
    pd.read_parquet(data / "train.parquet").assign(y=0).to_parquet(one_class, index=False)
    result = fityard("fit", upload(fityard, one_class), "--wait")
    error = failed(result)
    assert "at least two classes in 'y'" in error
    job_id = result.stdout.split()[0]
    status = ok(fityard("status", job_id))
    assert "FAILED" in status and "two classes" in status
    watched = fityard("watch", job_id)
    assert "two classes" in failed(watched)
    assert watched.stdout.split()[0] == "FAILED"


def test_a_bad_parameter_is_refused_naming_it(fityard, data):
    train_id = upload(fityard, data / "train.parquet")
    assert "params.max_bins" in failed(fityard("fit", train_id, "--param", "max_bins=300"))


@pytest.mark.parametrize(
    "command",
    [["status"], ["watch"], ["cancel"], ["download", "-o", "out.parquet"]],
    ids=lambda c: c[0],
)
def test_an_unknown_job_id_exits_1_naming_it(stack, command, tmp_path):
    job_id = f"job_{uuid.uuid4().hex[:16]}"
    args = [
        command[0],
        job_id,
        *[str(tmp_path / a) if a.endswith(".parquet") else a for a in command[1:]],
    ]
    error = failed(run(*args, address=stack.address))
    assert job_id in error
    assert not (tmp_path / "out.parquet").exists()


def test_no_server_at_the_address_is_an_error_not_a_traceback():
    address = f"127.0.0.1:{free_port()}"
    assert address in failed(run("jobs", address=address))


def test_python_m_fityard_is_the_same_command(stack):
    out = ok(run("datasets", env_address=stack.address, program=(sys.executable, "-m", "fityard")))
    assert out.split()[:2] == ["ID", "NAME"]


def test_a_run_limit_fails_the_job_saying_so(fityard, data):
    train_id = upload(fityard, data / "train.parquet")
    result = fityard(
        "fit",
        train_id,
        "--max-run-seconds",
        1,
        "--param",
        "max_iter=100000",
        "--param",
        "early_stopping=false",
        "--wait",
    )
    assert "timed out after 1 s" in failed(result)
    status = ok(fityard("status", result.stdout.split()[0]))
    assert "FAILED" in status and "1 s per run" in status
