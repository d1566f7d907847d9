"""The `fityard` command: run the stack, move data in and out, follow jobs.

Every command is a thin wrapper over the SDK (fityard.client). Output meant
for scripts (ids, tables) goes to stdout; progress and errors go to stderr.
Errors print `error: <what the server said>` and exit 1, Ctrl-C exits 130.
Exit codes: 0 done, 1 error (or the job failed or was cancelled), 2 bad
command line (argparse), 124 `--timeout` ran out while waiting for a job (the
job carries on; 124 as GNU timeout(1) uses it), 130 interrupted.
Heavy imports (gRPC, pandas, the embedded stack) happen inside the commands
that need them, so `fityard --help` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from fityard.client import Client, Job

HEALTH_CHECK_SECONDS = 2.0
# Exit code when --timeout runs out before the job ends (GNU timeout's; 2 is
# argparse's for a bad command line).
EXIT_TIMEOUT = 124
EXIT_CODES_HELP = (
    "exit codes: 0 the job succeeded; 1 it failed or was cancelled, or an error; 2 bad command line; "
    f"{EXIT_TIMEOUT} --timeout ran out (the job carries on: the message says where it is); 130 interrupted"
)


# -- output helpers ------------------------------------------------------------


def _table(headers: list[str], rows: Iterable[list[str]], out: TextIO = sys.stdout) -> None:
    """Left-aligned columns, two spaces apart, like `docker ps`."""
    rows = [headers, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _size(n: float) -> str:
    """Bytes for people: 95.7 KiB, 35.8 MiB."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def _job_line(job: Job) -> str:
    """One line of a job's progress: state, percent done, what it is doing."""
    return f"{job.state:<9} {job.progress:>4.0%}  {job.progress_message}".rstrip()


def _follow(job: Job, out: TextIO, prefix: str = "", timeout: float | None = None) -> Job:
    """Print a line each time the job's state, progress or message changes
    (pushed by WatchJob) and return the finished job. Does not raise for a
    failed job: callers decide what failure means for them. Raises JobTimeout
    if it has not ended after `timeout` seconds."""
    last = None
    for snapshot in job.watch(timeout):
        line = _job_line(snapshot)
        if line != last:
            print(f"{prefix}{line}", file=out, flush=True)
            last = line
    return job


def _finished(job: Job) -> int:
    """Exit code for a finished job, printing why it did not succeed."""
    if job.state == "FAILED":
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    if job.state == "CANCELLED":
        print(f"error: job {job.id} was cancelled", file=sys.stderr)
        return 1
    return 0


def _client(args: argparse.Namespace) -> Client:
    from fityard.client import Client

    return Client(args.address)


# -- stack and data commands ------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from services.embedded import serve

    return serve(
        port=args.port, data_dir=args.data_dir, trainers=args.trainers, storage=args.storage
    )


def cmd_make_data(args: argparse.Namespace) -> int:
    from ml.data import make_data

    files = make_data(Path(args.dir), rows=args.rows, seed=args.seed)
    for path in files.values():
        print(path)
    return 0


# -- dataset commands ------------------------------------------------------------


def cmd_upload(args: argparse.Namespace) -> int:
    with _client(args) as c:
        ds = c.upload(args.file, name=args.name)
    print(f"{ds.id}  {ds.rows} rows  {len(ds.columns)} columns  {ds.name}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    with _client(args) as c:
        found = c.datasets()
    _table(
        ["ID", "NAME", "ROWS", "COLUMNS", "SIZE", "CREATED"],
        (
            [
                d.id,
                d.name,
                str(d.rows),
                str(len(d.columns)),
                _size(d.size_bytes),
                _when(d.create_time),
            ]
            for d in found
        ),
    )
    return 0


# -- job commands ------------------------------------------------------------


def _wait_for(job: Job, out: TextIO, timeout: float | None) -> int:
    """Follow the job on `out` until it ends (exit code as _finished) or
    `timeout` runs out (exit EXIT_TIMEOUT, saying where the job is)."""
    from fityard.client import JobTimeout

    try:
        return _finished(_follow(job, out, timeout=timeout))
    except JobTimeout as exc:
        print(f"error: {exc} (fityard watch {job.id} / fityard cancel {job.id})", file=sys.stderr)
        return EXIT_TIMEOUT


def _submitted(job: Job, wait: bool, timeout: float | None = None) -> int:
    """Print a new job's id (stdout, for scripts); with --wait follow it on
    stderr and exit 1 with its error if it does not succeed, EXIT_TIMEOUT if
    it has not ended after `timeout` seconds."""
    print(job.id, flush=True)
    if not wait:
        return 0
    return _wait_for(job, sys.stderr, timeout)


def cmd_fit(args: argparse.Namespace) -> int:
    with _client(args) as c:
        job = c.fit(args.dataset_id, timeout_seconds=args.max_run_seconds or 0, **dict(args.param))
        return _submitted(job, args.wait, args.timeout)


def cmd_predict(args: argparse.Namespace) -> int:
    with _client(args) as c:
        job = c.predict(args.model_id, args.dataset_id, timeout_seconds=args.max_run_seconds or 0)
        return _submitted(job, args.wait, args.timeout)


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        job = c.job(args.job_id)
    fields = [
        ("id", job.id),
        ("kind", job.kind),
        ("state", job.state),
        ("progress", f"{job.progress:.0%}  {job.progress_message}".rstrip()),
        ("dataset", job.dataset_id),
        ("model", job.model_id),
        ("rows", str(job.rows or "-")),
        (
            "attempts",
            str(job.attempts)
            + (f" ({job.lost_attempts} lost to a dead process)" if job.lost_attempts else ""),
        ),
        ("limit", f"{job.timeout_seconds:.0f} s per run" if job.timeout_seconds else "-"),
        ("created", _when(job.create_time)),
        ("started", _when(job.start_time)),
        ("ended", _when(job.end_time)),
        ("outputs", ", ".join(job.outputs) or "-"),
    ]
    if job.kind == "fit":
        fields.insert(
            6, ("params", " ".join(f"{k}={v}" for k, v in job.params.items()) or "defaults")
        )
    if job.error:
        fields.append(("error", job.error))
    for name, value in fields:
        print(f"{name + ':':<10} {value}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    with _client(args) as c:
        return _wait_for(c.job(args.job_id), sys.stdout, args.timeout)


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as c:
        found = c.jobs()
    _table(
        ["ID", "KIND", "STATE", "PROGRESS", "DATASET", "MODEL", "CREATED"],
        (
            [
                j.id,
                j.kind,
                j.state,
                f"{j.progress:.0%}",
                j.dataset_id,
                j.model_id if j.kind == "predict" else "-",
                _when(j.create_time),
            ]
            for j in found
        ),
    )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as c:
        job = c.cancel(args.job_id)
    print(f"{job.id}  {job.state}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    with _client(args) as c:
        path = c.download(args.job_id, args.out, args.output)
    print(f"{path}  {_size(path.stat().st_size)}")
    return 0


# -- demo ------------------------------------------------------------


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


def cmd_demo(args: argparse.Namespace) -> int:
    """The seed workflow end to end, against the stack at --address if one
    answers, else a throwaway embedded stack stopped at the end."""
    from fityard.client import ADDRESS_ENV, DEFAULT_ADDRESS, Client

    address = args.address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    with contextlib.ExitStack() as cleanup:
        if _healthy(address):
            print(f"using the fityard at {address}", flush=True)
        else:
            from services.embedded import EmbeddedStack

            home = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="fityard-demo-")))
            print(f"no fityard at {address}; starting one in {home} ...", flush=True)
            address = cleanup.enter_context(EmbeddedStack(home / "stack")).address
            print(f"started fityard at {address}", flush=True)
        if args.data_dir:
            data_dir = Path(args.data_dir)
        else:
            data_dir = Path(
                cleanup.enter_context(tempfile.TemporaryDirectory(prefix="fityard-demo-data-"))
            )
        client = cleanup.enter_context(Client(address))
        return _run_demo(client, data_dir, args.rows)


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _run_demo(c: Client, data_dir: Path, rows: int) -> int:
    from fityard.client import FityardError
    from ml.data import make_data

    _step(f"make-data {data_dir} --rows {rows}")
    files = make_data(data_dir, rows=rows)
    for path in files.values():
        print(f"    {path}")

    fit = _demo_good_fit(c, files["train"])
    if fit is None:
        return 1
    accuracy_ok = _demo_good_predict(c, fit, files["test"])
    if not accuracy_ok:
        return 1

    _step(f"upload {files['bad_train'].name} and fit on it (should fail: it has no 'y')")
    bad_train = c.upload(files["bad_train"])
    bad_fit = _demo_expect_failure(lambda: c.fit(bad_train), FityardError)
    _step(f"upload {files['bad_test'].name} and predict on it (should fail: it lacks a feature)")
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
    print(f"    {ds.id}: {ds.rows} rows x {len(ds.columns)} columns, {_size(ds.size_bytes)}")
    _step(f"fit {ds.id}")
    fit = c.fit(ds)
    print(f"    {fit.id}")
    _follow(fit, sys.stdout, prefix="    ")
    if fit.state != "SUCCEEDED":
        print(f"error: fit {fit.state}: {fit.error}", file=sys.stderr)
        return None
    return fit


def _demo_good_predict(c: Client, fit: Job, test: Path) -> bool:
    import pandas as pd

    _step(f"upload {test.name}")
    ds = c.upload(test)
    print(f"    {ds.id}: {ds.rows} rows x {len(ds.columns)} columns, {_size(ds.size_bytes)}")
    _step(f"predict with model {fit.id} on {ds.id}")
    pred = c.predict(fit, ds)
    print(f"    {pred.id}")
    _follow(pred, sys.stdout, prefix="    ")
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


def _demo_expect_failure(submit: Callable[[], Job], error_type: type) -> bool:
    """Run a submission that should fail and show what the user is told,
    whether the server refuses it at once or the job fails."""
    try:
        job = submit()
        print(f"    {job.id}")
        _follow(job, sys.stdout, prefix="    ")
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


# -- parser ------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _add_max_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-run-seconds",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="the job FAILS with 'timed out' if a run takes longer (default: derived by the server from the data size)",
    )


def _add_timeout(p: argparse.ArgumentParser, needs_wait: bool) -> None:
    """--timeout SECONDS, and the exit codes in the command's help."""
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=("with --wait, " if needs_wait else "")
        + f"stop waiting after SECONDS: print the job's state and progress and exit {EXIT_TIMEOUT} "
        "(the job carries on; watch it again or cancel it)",
    )
    p.epilog = EXIT_CODES_HELP


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. max_iter=50), got {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    from fityard import __version__

    address_help = "gateway address (default: $FITYARD_ADDRESS or localhost:50051)"
    parser = argparse.ArgumentParser(
        prog="fityard",
        description="Tabular model training as a service: upload Parquet, fit, predict, download.",
    )
    parser.add_argument("--version", action="version", version=f"fityard {__version__}")
    parser.add_argument("--address", default=None, help=address_help)
    # --address is accepted after the subcommand too; SUPPRESS keeps the
    # global value when it is not repeated there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=argparse.SUPPRESS, help=address_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("up", cmd_up, "run the whole stack in the foreground until Ctrl-C")
    p.add_argument("--port", type=int, default=50051, help="gateway port (default 50051)")
    p.add_argument(
        "--data-dir", default=".fityard", help="where data and logs live (default .fityard)"
    )
    p.add_argument("--trainers", type=int, default=None, help="number of trainer processes")
    p.add_argument(
        "--storage", choices=["local", "s3"], default="local", help="object store (default local)"
    )

    p = command(
        "make-data", cmd_make_data, "write the seed Parquet files (train, test and two bad ones)"
    )
    p.add_argument("dir", help="directory to write into")
    p.add_argument("--rows", type=int, default=100_000, help="rows in total (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    p = command("demo", cmd_demo, "run the whole workflow, including what bad files produce")
    p.add_argument(
        "--data-dir", default=None, help="where to write the demo's files (default: a temp dir)"
    )
    p.add_argument("--rows", type=int, default=100_000, help="rows of seed data (default 100000)")

    p = command("upload", cmd_upload, "upload a Parquet file; prints the dataset id")
    p.add_argument("file")
    p.add_argument("--name", default=None, help="dataset name (default: the file name)")

    command("datasets", cmd_datasets, "list datasets, newest first")

    p = command(
        "fit", cmd_fit, "train a model on a dataset (column y is the target); prints the job id"
    )
    p.add_argument("dataset_id")
    p.add_argument(
        "--param",
        action="append",
        type=_key_value,
        default=[],
        metavar="NAME=VALUE",
        help="a HistGradientBoostingClassifier parameter, e.g. max_iter=50 (repeatable)",
    )
    _add_max_run(p)
    p.add_argument(
        "--wait", action="store_true", help="wait for the job; exit 1 with its error if it fails"
    )
    _add_timeout(p, needs_wait=True)

    p = command(
        "predict", cmd_predict, "predict y for a dataset with a trained model; prints the job id"
    )
    p.add_argument("model_id", help="id of a succeeded fit job")
    p.add_argument("dataset_id")
    _add_max_run(p)
    p.add_argument(
        "--wait", action="store_true", help="wait for the job; exit 1 with its error if it fails"
    )
    _add_timeout(p, needs_wait=True)

    p = command("status", cmd_status, "show a job")
    p.add_argument("job_id")

    p = command("watch", cmd_watch, "follow a job until it ends; exit 1 if it fails")
    p.add_argument("job_id")
    _add_timeout(p, needs_wait=False)

    p = command("download", cmd_download, "download a succeeded job's output")
    p.add_argument("job_id")
    p.add_argument(
        "-o", "--out", required=True, metavar="FILE", help="file (or directory) to write"
    )
    p.add_argument(
        "--output",
        choices=["model", "predictions"],
        default=None,
        help="which output (default: a fit's model, a predict's predictions)",
    )

    command("jobs", cmd_jobs, "list jobs, newest first")

    p = command("cancel", cmd_cancel, "stop a queued or running job")
    p.add_argument("job_id")
    return parser


def _user_message(exc: Exception) -> str | None:
    """What to tell the user for an expected failure; None for a bug (which
    then shows its traceback)."""
    client = sys.modules.get("fityard.client")
    if client is not None and isinstance(exc, client.FityardError):
        return exc.message
    embedded = sys.modules.get("services.embedded")
    if embedded is not None and isinstance(exc, embedded.StackError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "timeout", None) is not None and getattr(args, "wait", True) is False:
        parser.error(f"{args.command} --timeout needs --wait (it limits the wait)")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`fityard jobs | head`): not an error. Point
        # stdout at devnull so the interpreter's final flush does not fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        message = _user_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
