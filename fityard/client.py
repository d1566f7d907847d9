"""The fityard Python SDK: upload Parquet, fit, predict, download.

    with Client("localhost:50051") as c:
        train = c.upload("train.parquet")
        fit = c.fit(train, max_iter=50).wait()
        pred = c.predict(fit, c.upload("test.parquet")).wait()
        df = c.download(pred)                 # DataFrame with column `y`

Everything here is a thin, blocking layer over the gRPC API in
protos/fityard/v1: one RPC per method, server messages passed on unchanged
(wrapped in `FityardError`), files streamed in chunks so memory stays flat
whatever their size. pandas and tqdm are imported only when a call needs
them, so `import fityard` stays quick for the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import grpc
from google.protobuf.descriptor import FieldDescriptor

from fityard._errors import (
    FityardError,
    JobFailed,
    JobTimeout,
    ResourceExhausted,
    error_for,
    error_from,
    invalid_argument,
)
from fityard.limits import MAX_MESSAGE_BYTES, UPLOAD_CHUNK_BYTES
from fityard.v1 import datasets_pb2, datasets_pb2_grpc, jobs_pb2, jobs_pb2_grpc

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Client",
    "Dataset",
    "Job",
    "FityardError",
    "JobFailed",
    "JobTimeout",
    "fit_params",
    "DEFAULT_ADDRESS",
]

DEFAULT_ADDRESS = "localhost:50051"
ADDRESS_ENV = "FITYARD_ADDRESS"

# Uploads go out in 1 MiB chunks: well under the per-message limit the SDK
# shares with the gateway (MAX_MESSAGE_BYTES, fityard/limits.py), large
# enough that framing overhead does not matter.
CHUNK_SIZE = UPLOAD_CHUNK_BYTES
# An upload or download the gateway refuses because it is serving its limit
# of transfers (RESOURCE_EXHAUSTED with a RetryInfo) is tried this many times
# in all, waiting the delay it asks for, doubled each time (with jitter, at
# most TRANSFER_BACKOFF_MAX seconds). A download is retried only before any
# of its bytes arrived.
TRANSFER_ATTEMPTS = 6
TRANSFER_BACKOFF_MAX = 8.0
# Deadline for unary calls (submit, get, list, cancel). Streams have none:
# an upload or a watch takes as long as it takes.
DEFAULT_TIMEOUT = 60.0
# A watch that drops (gateway restart, network blip) is reopened this many
# times in a row before the error reaches the caller.
WATCH_RECONNECTS = 5

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # A WatchJob stream sits idle for as long as a fit runs between progress
    # updates. Keepalive pings notice a gateway that vanished (host gone, NAT
    # entry dropped) instead of waiting forever. The gateway accepts a ping
    # every 30 s (services/common/runtime.py); more often and it would close
    # the connection with GOAWAY "too_many_pings".
    ("grpc.keepalive_time_ms", 60 * 1000),
    ("grpc.keepalive_timeout_ms", 20 * 1000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    (
        "grpc.service_config",
        json.dumps(
            {
                "methodConfig": [
                    {
                        # Calls that are safe to repeat (reads, and submits: they carry an
                        # idempotency key) are retried by gRPC itself while the gateway is
                        # UNAVAILABLE (restarting): a user's script rides over it.
                        "name": [
                            {"service": "fityard.v1.JobService", "method": m}
                            for m in ("SubmitFit", "SubmitPredict", "GetJob", "ListJobs")
                        ]
                        + [
                            {"service": "fityard.v1.DatasetService", "method": m}
                            for m in ("GetDataset", "ListDatasets")
                        ],
                        "retryPolicy": {
                            "maxAttempts": 5,
                            "initialBackoff": "0.2s",
                            "maxBackoff": "3s",
                            "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"],
                        },
                    }
                ]
            }
        ),
    ),
]

_OUTPUTS = {
    None: jobs_pb2.JOB_OUTPUT_UNSPECIFIED,
    "model": jobs_pb2.JOB_OUTPUT_MODEL,
    "predictions": jobs_pb2.JOB_OUTPUT_PREDICTIONS,
}


# -- errors ------------------------------------------------------------------


def _retry_delay(error: grpc.RpcError) -> float | None:
    """Seconds to wait before trying a refused transfer again, if the
    gateway refused it for being busy (RESOURCE_EXHAUSTED carrying a
    google.rpc.RetryInfo); None for any other error, which is not retried
    (gRPC's own RESOURCE_EXHAUSTED for a message over the size limit carries
    no RetryInfo)."""
    refused = error_from(error, "")
    return refused.retry_delay if isinstance(refused, ResourceExhausted) else None


def _backoff(delay: float, attempt: int) -> float:
    """The wait before retry number `attempt` (0-based) of a refused transfer."""
    return min(max(delay, 0.1) * 2**attempt, TRANSFER_BACKOFF_MAX) * random.uniform(0.5, 1.5)


# -- records -----------------------------------------------------------------


def _datetime(ts) -> datetime | None:
    """A protobuf Timestamp as an aware UTC datetime; None if never set."""
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Dataset:
    """An uploaded, validated Parquet file as the server describes it."""

    id: str
    name: str
    rows: int
    columns: list[str] = field(hash=False)
    # Arrow type of each column, e.g. {"col_0": "double", "y": "int64"}.
    column_types: dict[str, str] = field(hash=False, repr=False)
    size_bytes: int
    sha256: str = field(repr=False)
    create_time: datetime | None = field(repr=False)

    @classmethod
    def from_proto(cls, message: datasets_pb2.Dataset) -> Dataset:
        return cls(
            id=message.id,
            name=message.name,
            rows=message.rows,
            columns=[c.name for c in message.columns],
            column_types={c.name: c.type for c in message.columns},
            size_bytes=message.size_bytes,
            sha256=message.sha256,
            create_time=_datetime(message.create_time),
        )


class Job:
    """A fit or predict job as last seen by this client.

    Attributes read the last snapshot; `refresh()`, `watch()` and `wait()`
    ask the server again and update it. A fit job's id is also its model id.
    """

    def __init__(self, message: jobs_pb2.Job, client: Client):
        self._message = message
        self._client = client

    # snapshot ---------------------------------------------------------------
    @property
    def proto(self) -> jobs_pb2.Job:
        """The raw fityard.v1.Job message, for fields not surfaced here."""
        return self._message

    @property
    def id(self) -> str:
        return self._message.id

    @property
    def kind(self) -> str:
        """ "fit" or "predict"."""
        return jobs_pb2.JobKind.Name(self._message.kind).removeprefix("JOB_KIND_").lower()

    @property
    def state(self) -> str:
        """ "QUEUED", "RUNNING", "SUCCEEDED", "FAILED" or "CANCELLED"."""
        return jobs_pb2.JobState.Name(self._message.state).removeprefix("JOB_STATE_")

    @property
    def done(self) -> bool:
        """True once the job is SUCCEEDED, FAILED or CANCELLED (it never changes again)."""
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> float:
        """Fraction done, 0 to 1."""
        return self._message.progress

    @property
    def progress_message(self) -> str:
        return self._message.progress_message

    @property
    def error(self) -> str:
        """For a FAILED job, what went wrong and how to fix it; else empty."""
        return self._message.error

    @property
    def dataset_id(self) -> str:
        return self._message.dataset_id

    @property
    def model_id(self) -> str:
        """The model a predict job uses; for a fit job, its own id (the model it trains)."""
        return self._message.model_id or (self.id if self.kind == "fit" else "")

    @property
    def attempts(self) -> int:
        return self._message.attempts

    @property
    def lost_attempts(self) -> int:
        """Attempts that ended because the process running them died
        (killed, out of memory); the server retries up to its limit."""
        return self._message.lost_attempts

    @property
    def timeout_seconds(self) -> float:
        """The most this job may run before it FAILS with "timed out"."""
        return self._message.timeout_seconds

    @property
    def cores(self) -> int:
        """CPU cores the job's last attempt runs on (0 until it starts)."""
        return self._message.cores

    @property
    def rows(self) -> int:
        return self._message.rows

    @property
    def params(self) -> dict[str, Any]:
        """The fit parameters that were set (unset ones keep scikit-learn's defaults)."""
        p = self._message.params
        return {f.name: getattr(p, f.name) for f in p.DESCRIPTOR.fields if p.HasField(f.name)}

    @property
    def outputs(self) -> list[str]:
        """What can be downloaded once SUCCEEDED: "model" and/or "predictions"."""
        return [
            jobs_pb2.JobOutput.Name(o).removeprefix("JOB_OUTPUT_").lower()
            for o in self._message.outputs
        ]

    @property
    def create_time(self) -> datetime | None:
        return _datetime(self._message.create_time)

    @property
    def start_time(self) -> datetime | None:
        return _datetime(self._message.start_time)

    @property
    def end_time(self) -> datetime | None:
        return _datetime(self._message.end_time)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, kind={self.kind!r}, state={self.state!r}, progress={self.progress:.2f})"

    # server calls -------------------------------------------------------------
    def refresh(self) -> Job:
        """Fetch the current record (GetJob) and return self."""
        self._message = self._client._get_job(self.id)  # noqa: SLF001 - the Job is the client's own handle
        return self

    def watch(self, timeout: float | None = None) -> Iterator[Job]:
        """Yield a snapshot each time the job changes, starting with its
        current state, until it is done. Pushed by the server (WatchJob),
        not polled. Raises JobTimeout (a TimeoutError saying the job's state
        and progress) if `timeout` seconds pass first; the job carries on."""
        try:
            for message in self._client._watch(self.id, timeout):  # noqa: SLF001
                self._message = message
                yield Job(message, self._client)
        except JobTimeout as exc:
            if exc.job is not None:
                self._message = exc.job.proto
            raise

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is done and return it (self, updated).

        Raises JobFailed (str = the job's error) if it FAILED, JobTimeout (a
        TimeoutError whose message names the job, its state and progress) if
        still unfinished after `timeout` seconds: the job carries on, wait
        again or cancel it. A CANCELLED job is returned: someone asked for that.
        """
        for _ in self.watch(timeout):
            pass
        if self.state == "FAILED":
            raise JobFailed(self)
        return self

    def cancel(self) -> Job:
        """Stop the job (CancelJob) and return self, updated."""
        self._message = self._client._cancel(self.id)  # noqa: SLF001
        return self

    def download(
        self,
        path: str | os.PathLike | None = None,
        output: str | None = None,
        *,
        progress: bool | None = None,
    ):
        """Same as Client.download(self, ...)."""
        return self._client.download(self, path, output, progress=progress)


DatasetRef = Union[Dataset, str]  # noqa: UP007 - a runtime alias: `|` needs 3.10 classes
JobRef = Union[Job, str]  # noqa: UP007


def _id_of(ref: Any, what: str) -> str:
    """The id of a Dataset/Job, or the string itself: methods take either."""
    if isinstance(ref, str):
        return ref
    ref_id = getattr(ref, "id", None)
    if isinstance(ref_id, str):
        return ref_id
    raise TypeError(f"{what} must be an id string or an object with .id, not {type(ref).__name__}")


# -- fit parameters ----------------------------------------------------------


def _coerce(fd: FieldDescriptor, value: Any) -> Any:
    """Convert a CLI string (or a bool for early_stopping) to the field's
    type; other values go through as given and protobuf checks them."""
    if fd.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
        if isinstance(value, bool):
            raise TypeError("bool is not an integer")
        return int(value) if isinstance(value, str) else value
    if fd.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        if isinstance(value, bool):
            raise TypeError("bool is not a number")
        return float(value) if isinstance(value, str) else value
    if fd.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return str(value).lower() if isinstance(value, bool) else value
    return value


def fit_params(**params: Any) -> jobs_pb2.FitParams:
    """FitParams from keyword arguments (HistGradientBoostingClassifier names).

    Strings are converted to the field's type so that `--param max_iter=50`
    works; None leaves a parameter unset. A name that is not a parameter or a
    value of the wrong type raises FityardError INVALID_ARGUMENT naming
    `params.<name>`, like the server does for values out of range.
    """
    fields = jobs_pb2.FitParams.DESCRIPTOR.fields_by_name
    message = jobs_pb2.FitParams()
    for name, value in params.items():
        if value is None:
            continue
        fd = fields.get(name)
        if fd is None:
            raise invalid_argument(
                f"params.{name}", f"is not a fit parameter; known: {', '.join(fields)}"
            )
        try:
            setattr(message, name, _coerce(fd, value))
        except (TypeError, ValueError):
            kind = {
                FieldDescriptor.CPPTYPE_DOUBLE: "a number",
                FieldDescriptor.CPPTYPE_STRING: "a string",
            }.get(fd.cpp_type, "an integer")
            raise invalid_argument(f"params.{name}", f"{value!r} is not {kind}") from None
    return message


# -- progress ----------------------------------------------------------------


def _progress_bar(total: int, desc: str, show: bool | None):
    """A tqdm byte counter on stderr; by default only when stderr is a
    terminal, so logs and pipes stay clean."""
    from tqdm import tqdm

    if show is None:
        isatty = getattr(sys.stderr, "isatty", None)
        show = bool(isatty and isatty())
    return tqdm(
        total=total or None,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not show,
        leave=False,
    )


def _is_dataframe(obj: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas ourselves (if
    the caller has one, pandas is already loaded)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(obj, pandas.DataFrame)


# -- client ------------------------------------------------------------------


class Client:
    """A connection to a fityard gateway.

    `address` defaults to $FITYARD_ADDRESS, else localhost:50051. `timeout`
    is the deadline for quick calls (submit, get, list, cancel); uploads,
    downloads and waits are not limited by it. Use as a context manager or
    call close().
    """

    def __init__(self, address: str | None = None, *, timeout: float = DEFAULT_TIMEOUT):
        self.address = address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
        self.timeout = timeout
        self._channel = grpc.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
        self._datasets = datasets_pb2_grpc.DatasetServiceStub(self._channel)
        self._jobs = jobs_pb2_grpc.JobServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.address!r})"

    @contextlib.contextmanager
    def _rpc(self):
        """Turn a failed call into FityardError, server message intact."""
        try:
            yield
        except grpc.RpcError as error:
            raise error_from(error, self.address) from None

    # datasets ------------------------------------------------------------------
    def upload(
        self,
        source: str | os.PathLike | pd.DataFrame,
        name: str | None = None,
        *,
        progress: bool | None = None,
    ) -> Dataset:
        """Upload a Parquet file (path) or a DataFrame and return the Dataset.

        The file is streamed in 1 MiB chunks and hashed on the way; the
        server's SHA-256 must match (else FityardError DATA_LOSS). `name`
        defaults to the file name ("dataframe.parquet" for a DataFrame,
        whose index is not uploaded). Not Parquet -> FityardError
        INVALID_ARGUMENT, and nothing is stored.
        """
        if _is_dataframe(source):
            return self._upload_dataframe(source, name or "dataframe.parquet", progress)
        path = Path(source)
        return self._upload_file(path, name or path.name, progress)

    def _upload_dataframe(self, frame: pd.DataFrame, name: str, progress: bool | None) -> Dataset:
        # Written to a temporary file first so the upload is the same
        # streamed, size-announced, hashed path as for any file.
        with tempfile.TemporaryDirectory(prefix="fityard-") as tmp:
            path = Path(tmp) / "frame.parquet"
            frame.to_parquet(path, index=False)
            return self._upload_file(path, name, progress)

    def _upload_file(self, path: Path, name: str, progress: bool | None) -> Dataset:
        size = path.stat().st_size
        attempt = 0
        while True:
            try:
                response, digest = self._upload_once(path, name, size, progress)
                break
            except grpc.RpcError as error:
                delay = _retry_delay(error)  # the gateway is busy: try again in a moment
                attempt += 1
                if delay is None or attempt >= TRANSFER_ATTEMPTS:
                    raise error_from(error, self.address) from None
                time.sleep(_backoff(delay, attempt - 1))
        dataset = Dataset.from_proto(response.dataset)
        if dataset.sha256 != digest.hexdigest():
            raise error_for(
                grpc.StatusCode.DATA_LOSS,
                f"dataset {dataset.id!r} was stored with sha256 {dataset.sha256} but {path} hashes to "
                f"{digest.hexdigest()}; the bytes were changed on the way (or the file changed while "
                "uploading): upload it again",
            )
        return dataset

    def _upload_once(self, path: Path, name: str, size: int, progress: bool | None):
        """One Upload call streaming the file from its start: (response, sha256 of what was sent)."""
        digest = hashlib.sha256()
        with path.open("rb") as f, _progress_bar(size, f"upload {name}", progress) as bar:

            def requests() -> Iterator[datasets_pb2.UploadRequest]:
                yield datasets_pb2.UploadRequest(
                    header=datasets_pb2.UploadHeader(name=name, size_bytes=size)
                )
                while chunk := f.read(CHUNK_SIZE):
                    digest.update(chunk)
                    bar.update(len(chunk))
                    yield datasets_pb2.UploadRequest(chunk=chunk)

            return self._datasets.Upload(requests()), digest

    def dataset(self, dataset: DatasetRef) -> Dataset:
        """One dataset by id (NOT_FOUND names an unknown id)."""
        with self._rpc():
            response = self._datasets.GetDataset(
                datasets_pb2.GetDatasetRequest(dataset_id=_id_of(dataset, "dataset")),
                timeout=self.timeout,
            )
        return Dataset.from_proto(response.dataset)

    def datasets(self, *, name: str | None = None) -> list[Dataset]:
        """Every dataset (or those named `name`), newest first (all pages)."""
        pages = self._pages(
            self._datasets.ListDatasets, datasets_pb2.ListDatasetsRequest, "datasets", name=name
        )
        return [Dataset.from_proto(d) for d in pages]

    # jobs ------------------------------------------------------------------------
    def fit(self, dataset: DatasetRef, *, timeout_seconds: float = 0, **params: Any) -> Job:
        """Submit a fit on a labelled dataset (column `y` is the target) and
        return the QUEUED job at once; `.wait()` for it. Keyword arguments
        are HistGradientBoostingClassifier parameters (max_iter=50, ...).
        `timeout_seconds` limits the run (default: derived by the server
        from the data size and parameters)."""
        request = jobs_pb2.SubmitFitRequest(
            dataset_id=_id_of(dataset, "dataset"),
            params=fit_params(**params),
            request_id=uuid.uuid4().hex,  # a retried call finds the job, not a new one
            timeout_seconds=timeout_seconds,
        )
        with self._rpc():
            response = self._jobs.SubmitFit(request, timeout=self.timeout)
        return Job(response.job, self)

    def predict(self, model: JobRef, dataset: DatasetRef, *, timeout_seconds: float = 0) -> Job:
        """Submit a predict job with a trained model (a succeeded fit Job or
        its id) on a dataset; returns the QUEUED job at once."""
        request = jobs_pb2.SubmitPredictRequest(
            model_id=_id_of(model, "model"),
            dataset_id=_id_of(dataset, "dataset"),
            request_id=uuid.uuid4().hex,
            timeout_seconds=timeout_seconds,
        )
        with self._rpc():
            response = self._jobs.SubmitPredict(request, timeout=self.timeout)
        return Job(response.job, self)

    def job(self, job: JobRef) -> Job:
        """One job's current record."""
        return Job(self._get_job(_id_of(job, "job")), self)

    def jobs(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        dataset: DatasetRef | None = None,
        model: JobRef | None = None,
    ) -> list[Job]:
        """Every job, newest first (all pages); keywords keep only the jobs
        in that state ("RUNNING"), of that kind ("fit"), on that dataset or
        predicting with that model."""
        pages = self._pages(
            self._jobs.ListJobs,
            jobs_pb2.ListJobsRequest,
            "jobs",
            state=state,
            kind=kind,
            dataset_id=None if dataset is None else _id_of(dataset, "dataset"),
            model_id=None if model is None else _id_of(model, "model"),
        )
        return [Job(j, self) for j in pages]

    def cancel(self, job: JobRef) -> Job:
        """Stop a queued or running job; FAILED_PRECONDITION if it already ended."""
        return Job(self._cancel(_id_of(job, "job")), self)

    def wait(self, job: JobRef, timeout: float | None = None) -> Job:
        """Client-side spelling of Job.wait for when all you have is an id."""
        return self.job(job).wait(timeout)

    def _get_job(self, job_id: str) -> jobs_pb2.Job:
        with self._rpc():
            return self._jobs.GetJob(
                jobs_pb2.GetJobRequest(job_id=job_id), timeout=self.timeout
            ).job

    def _snapshot(self, job_id: str, last: jobs_pb2.Job | None) -> Job | None:
        """The job as a timed-out watch leaves it: the last record it got, else
        a quick GetJob (bounded: the gateway may be what is slow); None if
        that fails too."""
        if last is None:
            try:
                last = self._jobs.GetJob(
                    jobs_pb2.GetJobRequest(job_id=job_id), timeout=min(self.timeout, 5.0)
                ).job
            except grpc.RpcError:
                return None
        return Job(last, self)

    def _cancel(self, job_id: str) -> jobs_pb2.Job:
        with self._rpc():
            return self._jobs.CancelJob(
                jobs_pb2.CancelJobRequest(job_id=job_id), timeout=self.timeout
            ).job

    def _pages(self, method, request_type, field_name: str, **conditions: str | None) -> Iterator:
        """Items of a List* call across all pages, following next_page_token;
        `conditions` (None: any) become the request's filter."""
        filter_text = " AND ".join(
            f"{name}={value}" for name, value in conditions.items() if value is not None
        )
        token = ""
        while True:
            with self._rpc():
                request = request_type(page_size=1000, page_token=token, filter=filter_text)
                response = method(request, timeout=self.timeout)
            yield from getattr(response, field_name)
            token = response.next_page_token
            if not token:
                return

    def _watch(self, job_id: str, timeout: float | None) -> Iterator[jobs_pb2.Job]:
        """Job records from WatchJob until a terminal one.

        A stream that ends early or drops as UNAVAILABLE (the gateway
        restarting) is reopened a few times; WatchJob starts with the current
        record, so nothing is missed that matters. `timeout` bounds the whole
        wait and raises JobTimeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        request = jobs_pb2.WatchJobRequest(job_id=job_id)
        last: jobs_pb2.Job | None = None
        retries = 0
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            call = self._jobs.WatchJob(request, timeout=remaining)
            try:
                for response in call:
                    retries = 0
                    last = response.job
                    yield last
                    if (
                        jobs_pb2.JobState.Name(last.state).removeprefix("JOB_STATE_")
                        in TERMINAL_STATES
                    ):
                        return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
                    raise JobTimeout(job_id, self._snapshot(job_id, last), timeout) from None
                if error.code() != grpc.StatusCode.UNAVAILABLE or retries >= WATCH_RECONNECTS:
                    raise error_from(error, self.address) from None
            finally:
                call.cancel()  # a no-op if it ended; stops the stream if the caller stopped early
            if retries >= WATCH_RECONNECTS:
                raise error_for(
                    grpc.StatusCode.UNAVAILABLE,
                    f"the watch of job {job_id!r} kept ending before the job finished; try again",
                )
            retries += 1
            time.sleep(min(0.2 * 2**retries, 5.0))

    # downloads -----------------------------------------------------------------
    def download(
        self,
        job: JobRef,
        path: str | os.PathLike | None = None,
        output: str | None = None,
        *,
        progress: bool | None = None,
    ):
        """Download a succeeded job's output.

        With `path`, stream it to that file (or into that directory under the
        server's file name) and return the Path; without, return the
        predictions as a pandas DataFrame. `output` is "predictions" or
        "model"; by default the job's main one (a fit's model, a predict's
        predictions). FAILED_PRECONDITION if the job has not succeeded.
        """
        if output not in _OUTPUTS:
            raise ValueError(f"output must be 'model', 'predictions' or None, not {output!r}")
        request = jobs_pb2.DownloadJobOutputRequest(
            job_id=_id_of(job, "job"), output=_OUTPUTS[output]
        )
        call, responses, first = self._open_download(lambda: self._jobs.DownloadJobOutput(request))
        try:
            with self._rpc():
                info = self._output_info(first)
                if path is not None:
                    return self._receive(responses, info, Path(path), progress)
                if info.content_type != PARQUET_CONTENT_TYPE:
                    raise ValueError(
                        f"{info.filename} is not a table; pass a path to save it: c.download(job, {info.filename!r})"
                    )
                return self._read_frame(responses, info, progress)
        finally:
            call.cancel()  # no-op once complete; frees the stream if we stopped early

    def download_dataset(
        self, dataset: DatasetRef, path: str | os.PathLike, *, progress: bool | None = None
    ) -> Path:
        """Stream an uploaded dataset's Parquet file back to `path` (a file, or
        a directory to keep its name); return the Path."""
        request = datasets_pb2.DownloadDatasetRequest(dataset_id=_id_of(dataset, "dataset"))
        call, responses, first = self._open_download(
            lambda: self._datasets.DownloadDataset(request)
        )
        try:
            with self._rpc():
                if first is None or first.WhichOneof("payload") != "dataset":
                    raise error_for(
                        grpc.StatusCode.DATA_LOSS, "the server did not describe the dataset first"
                    )
                info = jobs_pb2.OutputInfo(
                    size_bytes=first.dataset.size_bytes, filename=first.dataset.name
                )
                return self._receive(responses, info, Path(path), progress)
        finally:
            call.cancel()

    def _open_download(self, start):
        """Start a download call (`start()`) and read its first message:
        (call, the rest of its responses, first message or None). A call
        the gateway refuses for being busy is started again after a while;
        nothing has been written yet at that point."""
        attempt = 0
        while True:
            call = start()
            responses = iter(call)
            try:
                return call, responses, next(responses, None)
            except grpc.RpcError as error:
                call.cancel()
                delay = _retry_delay(error)
                attempt += 1
                if delay is None or attempt >= TRANSFER_ATTEMPTS:
                    raise error_from(error, self.address) from None
                time.sleep(_backoff(delay, attempt - 1))

    @staticmethod
    def _output_info(first: jobs_pb2.DownloadJobOutputResponse | None) -> jobs_pb2.OutputInfo:
        if first is None or first.WhichOneof("payload") != "info":
            raise error_for(
                grpc.StatusCode.DATA_LOSS, "the server did not describe the file before sending it"
            )
        return first.info

    def _read_frame(
        self, responses, info: jobs_pb2.OutputInfo, progress: bool | None
    ) -> pd.DataFrame:
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="fityard-") as tmp:
            path = self._receive(
                responses, info, Path(tmp) / (info.filename or "output.parquet"), progress
            )
            return pd.read_parquet(path)

    @staticmethod
    def _receive(
        responses: Iterable[jobs_pb2.DownloadJobOutputResponse],
        info: jobs_pb2.OutputInfo,
        path: Path,
        progress: bool | None,
    ) -> Path:
        """Write the chunks to `path` via a ".part" file renamed at the end,
        so an interrupted download never looks like a complete one."""
        if path.is_dir():
            path = path / info.filename
        partial = path.with_name(path.name + ".part")
        received = 0
        try:
            with (
                partial.open("wb") as f,
                _progress_bar(info.size_bytes, f"download {path.name}", progress) as bar,
            ):
                for response in responses:
                    f.write(response.chunk)
                    received += len(response.chunk)
                    bar.update(len(response.chunk))
            if info.size_bytes and received != info.size_bytes:
                raise error_for(
                    grpc.StatusCode.DATA_LOSS,
                    f"{info.filename}: received {received} bytes of {info.size_bytes}; download it again",
                )
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path
