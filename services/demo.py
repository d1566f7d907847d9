"""`fityard demo`: the seed workflow end to end, as a user of the SDK runs it.

It writes the seed data, uploads it, fits (showing the fit's held-out
score), predicts, downloads and checks the accuracy on the held-out labels,
predicts a few rows online (no job: the predictor pool answers at once),
then shows what a user is told for the two bad files. It runs against the stack at --address if one answers, else
starts a throwaway embedded stack (services/embedded/) and stops it at the
end. Everything it does to fityard goes through the public SDK
(`from fityard import ...`), as a user's script would.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from fityard import Client, FityardError, Job

HEALTH_CHECK_SECONDS = 2.0


def _healthy(address: str) -> bool:
    """True if a gRPC server at `address` answers grpc.health.v1 Check with SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=HEALTH_CHECK_SECONDS
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def run_demo(address: str | None, data_dir: str | Path | None, rows: int) -> int:
    """The demo against the stack at `address` (None: $FITYARD_ADDRESS or
    the default) if one answers, else a throwaway embedded stack; the seed
    files go to `data_dir` (None: a temporary directory). The exit code."""
    with Client(address) as probe:  # the address a Client would use
        address = probe.address
    with contextlib.ExitStack() as cleanup:
        if _healthy(address):
            print(f"using the fityard at {address}", flush=True)
        else:
            from services.embedded import EmbeddedStack

            home = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="fityard-demo-")))
            print(f"no fityard at {address}; starting one in {home} ...", flush=True)
            stack = EmbeddedStack(home / "stack", predictors=1)  # one, for the online step
            address = cleanup.enter_context(stack).address
            print(f"started fityard at {address}", flush=True)
        if data_dir is None:
            data_dir = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="fityard-demo-data-")
            )
        client = cleanup.enter_context(Client(address))
        return _run_demo(client, Path(data_dir), rows)


def _follow(job: Job, prefix: str = "    ") -> Job:
    """Print a line each time the job's state, progress or message changes;
    the finished job."""
    last = None
    for snapshot in job.watch():
        line = (
            f"{snapshot.state:<9} {snapshot.progress:>4.0%}  {snapshot.progress_message}".rstrip()
        )
        if line != last:
            print(f"{prefix}{line}", flush=True)
            last = line
    return job


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _run_demo(c: Client, data_dir: Path, rows: int) -> int:
    from ml.data import make_data

    _step(f"make-data {data_dir} --rows {rows}")
    files = make_data(data_dir, rows=rows)
    for path in files.values():
        print(f"    {path}")

    fit = _demo_good_fit(c, files["train"])
    if fit is None:
        return 1
    accuracy_ok = _demo_good_predict(c, fit, files["test"])
    if not accuracy_ok or not _demo_online(c, fit, files["test"]):
        return 1

    _step(f"upload {files['bad_train'].name} and fit on it (refused at submission: it has no 'y')")
    bad_train = c.upload(files["bad_train"])
    bad_fit = _demo_expect_failure(lambda: c.fit(bad_train), FityardError)
    _step(
        f"upload {files['bad_test'].name} and predict on it (refused at submission: it lacks a feature)"
    )
    bad_test = c.upload(files["bad_test"])
    bad_predict = _demo_expect_failure(lambda: c.predict(fit, bad_test), FityardError)

    ok = bad_fit and bad_predict
    _step(
        "demo " + ("finished: the good path works and bad files are explained" if ok else "FAILED")
    )
    return 0 if ok else 1


def _demo_good_fit(c: Client, train: Path) -> Job | None:
    _step(f"upload {train.name}")
    ds = c.upload(train)
    print(
        f"    {ds.id}: {ds.rows} rows x {len(ds.columns)} columns, {ds.size_bytes / 2**20:.1f} MiB"
    )
    _step(f"fit {ds.id}")
    fit = c.fit(ds)
    print(f"    {fit.id}")
    _follow(fit)
    if fit.state != "SUCCEEDED":
        print(f"error: fit {fit.state}: {fit.error}", file=sys.stderr)
        return None
    m = fit.metrics
    held_out = (
        f"held-out accuracy {m.validation_accuracy:.3f}, log-loss {m.validation_log_loss:.3f} "
        f"on {m.validation_rows:,} rows early stopping set aside"
        if m.validation_rows
        else "no held-out rows"
    )
    print(
        f"    {m.n_iter} boosting rounds in {m.fit_seconds:.1f} s on {m.train_rows:,} rows; {held_out}"
    )
    return fit


def _demo_good_predict(c: Client, fit: Job, test: Path) -> bool:
    import pandas as pd

    _step(f"upload {test.name}")
    ds = c.upload(test)
    print(
        f"    {ds.id}: {ds.rows} rows x {len(ds.columns)} columns, {ds.size_bytes / 2**20:.1f} MiB"
    )
    _step(f"predict with model {fit.id} on {ds.id}")
    pred = c.predict(fit, ds)
    print(f"    {pred.id}")
    _follow(pred)
    if pred.state != "SUCCEEDED":
        print(f"error: predict {pred.state}: {pred.error}", file=sys.stderr)
        return False
    _step(f"download {pred.id}")
    predicted = c.download(pred)["y"].to_numpy()
    truth = pd.read_parquet(test, columns=["y"])["y"].to_numpy()
    print(f"    {len(predicted)} predictions")
    if len(predicted) != len(truth):
        print(f"error: {len(predicted)} predictions for {len(truth)} rows", file=sys.stderr)
        return False
    print(f"    accuracy on the held-out y of {test.name}: {(predicted == truth).mean():.3f}")
    return True


def _demo_online(c: Client, fit: Job, test: Path) -> bool:
    import pandas as pd

    rows = pd.read_parquet(test).drop(columns=["y"]).head(3).to_dict("records")
    _step(f"predict {len(rows)} rows online with model {fit.id} (no job, no queue)")
    for answer in c.predict_rows(fit, rows):
        chances = ", ".join(f"p({label})={p:.3f}" for label, p in answer.probabilities.items())
        print(f"    y={answer.label}  ({chances})")
    return True


def _demo_expect_failure(submit: Callable[[], Job], error_type: type) -> bool:
    """Run a submission that should fail and show what the user is told,
    whether the server refuses it at once or the job fails."""
    try:
        job = submit()
        print(f"    {job.id}")
        _follow(job)
    except error_type as exc:
        print(f"    refused: {exc}")
        return bool(str(exc))
    if job.state == "FAILED" and job.error:
        print(f"    the user is told: {job.error}")
        return True
    print(
        f"error: expected the job to fail with a message, but it ended {job.state}", file=sys.stderr
    )
    return False
