"""The client's commands: move data in and out, submit and follow jobs.

Each `cmd_*` takes the parsed command line and returns the exit code (see
fityard/cli.py, which builds the parser and runs them). Output meant for
scripts (ids, tables) goes to stdout; progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from fityard.client import Client, Job

# Exit code when --timeout runs out before the job ends (GNU timeout's; 2 is
# argparse's for a bad command line).
EXIT_TIMEOUT = 124


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

    return Client(
        args.address,
        api_key=getattr(args, "api_key", None),
        tls=getattr(args, "tls", None),
        ca_file=getattr(args, "ca_file", None),
        cert_file=getattr(args, "cert_file", None),
        key_file=getattr(args, "key_file", None),
        predict_address=getattr(args, "predict_address", None),
    )


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
    from fityard._errors import JobTimeout

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
        job = c.fit(
            args.dataset_id,
            timeout_seconds=args.max_run_seconds or 0,
            cache=not args.no_cache,
            priority=args.priority,
            **dict(args.param),
        )
        return _submitted(job, args.wait, args.timeout)


def cmd_predict(args: argparse.Namespace) -> int:
    with _client(args) as c:
        job = c.predict(
            args.model_id,
            args.dataset_id,
            timeout_seconds=args.max_run_seconds or 0,
            priority=args.priority,
            probabilities=args.probabilities,
        )
        return _submitted(job, args.wait, args.timeout)


def cmd_predict_rows(args: argparse.Namespace) -> int:
    """JSON lines in (a row each: column name -> value), JSON lines out (`y`
    and `proba_<class>`), in order, over one StreamPredict stream. Lines are
    sent in groups of --batch-rows (one at a time from a terminal, so each
    typed row is answered at once)."""
    import json

    batch_rows = args.batch_rows or (1 if sys.stdin.isatty() else 500)

    def batches():
        batch: list[dict] = []
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"error: stdin line {number} is not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise SystemExit(
                    f"error: stdin line {number} must be a JSON object (column name -> value), "
                    f"not {type(row).__name__}"
                )
            batch.append(row)
            if len(batch) >= batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch

    with _client(args) as c:
        for answers in c.predict_stream(args.model_id, batches()):
            for answer in answers:
                line = {"y": answer.label}
                line.update({f"proba_{k}": p for k, p in answer.probabilities.items()})
                print(json.dumps(line), flush=batch_rows == 1)
    return 0


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
    fields.insert(3, ("priority", job.priority.lower()))
    if job.queue_position:
        wait = job.estimated_wait_seconds
        fields.insert(
            4,
            ("queue", f"#{job.queue_position}" + (f", about {wait:.0f} s" if wait else "")),
        )
    if job.cached_from:
        fields.append(("cached", f"the model of {job.cached_from} (same data and parameters)"))
    if job.probabilities:
        fields.append(("output", "y and the probability of each class (proba_<class>)"))
    if job.metrics is not None:
        fields.extend(_metrics_fields(job.metrics))
    if job.error:
        fields.append(("error", job.error))
    for name, value in fields:
        print(f"{name + ':':<10} {value}")
    return 0


def _metrics_fields(m) -> list[tuple[str, str]]:
    """A fit's metrics (fityard.FitMetrics), as `fityard status` lines."""
    if m.validation_rows:
        score = (
            f"accuracy {m.validation_accuracy:.4f}, log-loss {m.validation_log_loss:.4f} on "
            f"{m.validation_rows:,} held-out rows (validation_fraction {m.validation_fraction:g}, "
            f"seed {m.validation_seed})"
        )
    else:
        score = "none: no rows were held out (fit with validation_fraction to get one)"
    features = ", ".join(f"{name} ({kind})" for name, kind in list(m.features.items())[:20])
    if len(m.features) > 20:
        features += f", … and {len(m.features) - 20} more"
    return [
        ("classes", ", ".join(map(str, m.classes))),
        ("features", features),
        (
            "model",
            f"{m.n_iter} boosting rounds, {_size(m.model_size_bytes)}, fitted in "
            f"{m.fit_seconds:.2f} s on {m.train_rows:,} rows",
        ),
        ("held-out", score),
    ]


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


def cmd_delete(args: argparse.Namespace) -> int:
    """Each id in turn; a refused one is reported and the rest still go."""
    from fityard._errors import FityardError

    failed = 0
    with _client(args) as c:
        for item in args.ids:
            try:
                if item.startswith("ds_"):
                    c.delete_dataset(item)
                else:
                    c.delete_job(item)
            except FityardError as exc:
                print(f"error: {item}: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(f"deleted {item}")
    return 1 if failed else 0


def cmd_cancel(args: argparse.Namespace) -> int:
    if args.all == bool(args.job_id):
        print(
            "error: name one job (fityard cancel JOB_ID) or use --all (with --state/--kind to narrow it)",
            file=sys.stderr,
        )
        return 2
    if not args.all and (args.state or args.kind):
        print("error: --state and --kind go with --all", file=sys.stderr)
        return 2
    with _client(args) as c:
        if args.all:
            jobs = c.cancel_all(state=args.state, kind=args.kind)
            for job in jobs:
                print(f"{job.id}  {job.state}")
            print(f"cancelled {len(jobs)} job(s)", file=sys.stderr)
            return 0
        job = c.cancel(args.job_id)
    print(f"{job.id}  {job.state}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    with _client(args) as c:
        path = c.download(args.job_id, args.out, args.output)
    print(f"{path}  {_size(path.stat().st_size)}")
    return 0


# -- trace -----------------------------------------------------------------------


def cmd_trace(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fityard import traces

    with _client(args) as c:
        job = c.job(args.job_id)
    if not job.trace_id:
        print(f"job {job.id} has no trace: tracing was off when it was submitted", file=sys.stderr)
        return 1
    spans = traces.read_trace(Path(args.data_dir) / traces.TRACES_DIR, job.trace_id)
    print(f"trace {job.trace_id} of job {job.id} ({job.state})")
    if not spans:
        print(
            f"no spans of it are kept under {args.data_dir} (fityard up keeps them there);"
            f" see {traces.trace_url(job.trace_id)}"
        )
        return 0
    for line in traces.render(spans):
        print(line)
    return 0
