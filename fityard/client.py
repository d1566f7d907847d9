"""The fityard Python SDK: upload Parquet, fit, predict, download.

    with Client("localhost:50051") as c:
        train = c.upload("train.parquet")
        fit = c.fit(train, max_iter=50).wait()
        pred = c.predict(fit, c.upload("test.parquet")).wait()
        df = c.download(pred)                 # DataFrame with column `y`

Everything here is a thin, blocking layer over the gRPC API in
protos/fityard/v1: one RPC per method, server messages passed on unchanged
(as the exceptions of fityard/_errors.py). This module is the `Client` and
its connection; what it returns is in _models.py (Dataset, Job), fit
parameters in _params.py, file streaming in _transfers.py. The names other
code imports from here (Dataset, Job, FityardError, JobFailed, JobTimeout,
fit_params) stay importable from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from fityard._auth import API_KEY_ENV, tls_credentials, with_key
from fityard._errors import (
    FailedPrecondition,
    FityardError,
    JobFailed,
    JobTimeout,
    error_for,
    error_from,
)
from fityard._models import (
    TERMINAL_STATES,
    Dataset,
    DatasetRef,
    Job,
    JobRef,
    Prediction,
    id_of,
    state_name,
)
from fityard._params import fit_params, priority_value
from fityard._predictions import answer_of, request_for, route_of
from fityard._tracing import trace_metadata
from fityard._transfers import (
    CHUNK_SIZE,
    PARQUET_CONTENT_TYPE,
    is_dataframe,
    open_download,
    output_info,
    read_frame,
    receive,
    require_data,
    upload_dataframe,
    upload_file,
)
from fityard.limits import MAX_MESSAGE_BYTES
from fityard.v1 import (
    datasets_pb2,
    datasets_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    predictions_pb2,
    predictions_pb2_grpc,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Client",
    "Dataset",
    "Job",
    "Prediction",
    "FityardError",
    "JobFailed",
    "JobTimeout",
    "fit_params",
    "DEFAULT_ADDRESS",
    "CHUNK_SIZE",
]

DEFAULT_ADDRESS = "localhost:50051"
ADDRESS_ENV = "FITYARD_ADDRESS"
PREDICT_ADDRESS_ENV = "FITYARD_PREDICT_ADDRESS"

# Deadline for unary calls (submit, get, list, cancel). Streams have none:
# an upload or a watch takes as long as it takes.
DEFAULT_TIMEOUT = 60.0
# A watch that drops (gateway restart, network blip) is reopened this many
# times in a row before the error reaches the caller.
WATCH_RECONNECTS = 5

_SERVICE_CONFIG = {
    "methodConfig": [
        {
            # Calls that are safe to repeat (reads, submits: they carry an
            # idempotency key, and online predictions) are retried by gRPC
            # itself while the gateway or a predictor is UNAVAILABLE
            # (restarting, dead): a user's script rides over it.
            "name": [
                {"service": "fityard.v1.JobService", "method": m}
                for m in ("SubmitFit", "SubmitPredict", "GetJob", "ListJobs")
            ]
            + [
                {"service": "fityard.v1.DatasetService", "method": m}
                for m in ("GetDataset", "ListDatasets")
            ]
            + [{"service": "fityard.v1.PredictionService", "method": "Predict"}],
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
    ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
]
# The predictor pool's channel spreads calls, one by one, over every address
# its name has: a DNS name of several predictors (Kubernetes' headless
# Service), or `ipv4:127.0.0.1:P1,127.0.0.1:P2` (what `fityard up` prints).
# gRPC's default, pick_first, would send every call to one of them.
_PREDICT_CHANNEL_OPTIONS = [
    *(option for option in _CHANNEL_OPTIONS if option[0] != "grpc.service_config"),
    (
        "grpc.service_config",
        json.dumps({**_SERVICE_CONFIG, "loadBalancingConfig": [{"round_robin": {}}]}),
    ),
]

_OUTPUTS = {
    None: jobs_pb2.JOB_OUTPUT_UNSPECIFIED,
    "model": jobs_pb2.JOB_OUTPUT_MODEL,
    "predictions": jobs_pb2.JOB_OUTPUT_PREDICTIONS,
}


# The states a job can be cancelled in.
_CANCELLABLE = ("QUEUED", "RUNNING")


class Client:
    """A connection to a fityard gateway.

    `address` defaults to $FITYARD_ADDRESS, else localhost:50051; `api_key`
    to $FITYARD_API_KEY (a fityard that runs open needs none). `tls=True`
    (or $FITYARD_TLS=1) connects over TLS, checking the server against
    `ca_file` ($FITYARD_CA_FILE; default the system's CAs), with a client
    certificate (`cert_file`, `key_file`; $FITYARD_CLIENT_CERT_FILE,
    $FITYARD_CLIENT_KEY_FILE) where the gateway requires one. `timeout`
    is the deadline for quick calls (submit, get, list, cancel); uploads,
    downloads and waits are not limited by it. Use as a context manager or
    call close().

    Online predictions (`predict_rows`) go through the gateway, which
    forwards them to the predictor pool; `predict_address`
    ($FITYARD_PREDICT_ADDRESS) sends them to the pool directly instead (one
    hop less: for high request rates), with the same key and TLS settings.
    Without one, a gateway that names the pool's address in its answer
    (`fityard up` does; FITYARD_PUBLIC_PREDICT_ADDRESS elsewhere) has the
    client's next `predict_rows` calls go there; if that address fails them
    (UNAVAILABLE), the call is made through the gateway again and the
    address is not used again. `follow_predict_route=False` keeps every call
    on the gateway. Streams (`predict_stream`) stay on the gateway.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        api_key: str | None = None,
        tls: bool | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        predict_address: str | None = None,
        follow_predict_route: bool = True,
    ):
        self.address = address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
        self.predict_address = predict_address or os.environ.get(PREDICT_ADDRESS_ENV) or ""
        self.timeout = timeout
        credentials = tls_credentials(tls, ca_file, cert_file, key_file)

        def channel(address: str, options=_CHANNEL_OPTIONS) -> grpc.Channel:
            if credentials is not None:
                return grpc.secure_channel(address, credentials, options=options)
            return grpc.insecure_channel(address, options=options)

        self._channel = channel(self.address)
        # The key for every call (default: $FITYARD_API_KEY); none for a
        # fityard that runs open (`fityard up` on this machine).
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        calls = with_key(self._channel, key)
        self._datasets = datasets_pb2_grpc.DatasetServiceStub(calls)
        self._jobs = jobs_pb2_grpc.JobServiceStub(calls)

        def pool_channel(target: str) -> grpc.Channel:
            return channel(target, _PREDICT_CHANNEL_OPTIONS)

        self._predict_channel = pool_channel(self.predict_address) if self.predict_address else None
        self._predictions = predictions_pb2_grpc.PredictionServiceStub(
            with_key(self._predict_channel, key) if self._predict_channel else calls
        )
        # The pool's address as the gateway named it (_predict): learned
        # only without a predict_address, dropped for good once it fails
        # (its channel closed with the client: another thread's call may
        # still be on it).
        self._may_follow = follow_predict_route and not self.predict_address
        self._routed = None  # a PredictionServiceStub on the pool's address
        self._route_channels: list[grpc.Channel] = []
        self._route_lock = threading.Lock()
        self._pool_channel = lambda target: with_key(pool_channel(target), key)

    def close(self) -> None:
        """Close the connection (calls in flight are cancelled)."""
        self._channel.close()
        if self._predict_channel is not None:
            self._predict_channel.close()
        for route in self._route_channels:
            route.close()

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
        dedup: bool = True,
    ) -> Dataset:
        """Upload a Parquet file (path) or a DataFrame and return the Dataset.

        The file is streamed in 1 MiB chunks and hashed on the way; the
        server's SHA-256 must match (else FityardError DATA_LOSS). `name`
        defaults to the file name ("dataframe.parquet" for a DataFrame,
        whose index is not uploaded). Not Parquet -> FityardError
        INVALID_ARGUMENT, and nothing is stored.

        The server keeps one dataset per content: bytes already uploaded
        return the dataset holding them (under the name it was first given).
        The digest is offered first, so such bytes are not even sent;
        `dedup=False` sends them anyway (the answer is the same).
        """
        if is_dataframe(source):
            name = name or "dataframe.parquet"
            return upload_dataframe(self._datasets, self.address, source, name, progress, dedup)
        path = Path(source)
        return upload_file(self._datasets, self.address, path, name or path.name, progress, dedup)

    def dataset(self, dataset: DatasetRef) -> Dataset:
        """One dataset by id (NOT_FOUND names an unknown id)."""
        with self._rpc():
            response = self._datasets.GetDataset(
                datasets_pb2.GetDatasetRequest(dataset_id=id_of(dataset, "dataset")),
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
    def fit(
        self,
        dataset: DatasetRef,
        *,
        timeout_seconds: float = 0,
        cache: bool = True,
        priority: str | None = None,
        **params: Any,
    ) -> Job:
        """Submit a fit on a labelled dataset (column `y` is the target) and
        return the QUEUED job at once; `.wait()` for it. Keyword arguments
        are HistGradientBoostingClassifier parameters (max_iter=50, ...).
        `timeout_seconds` limits the run (default: derived by the server
        from the data size and parameters).

        With `random_state` set the fit is deterministic, and a fit of the
        same dataset bytes with the same parameters is answered from that
        fit's model (`Job.cached`, at once if it has succeeded); `cache=False`
        trains anyway.

        `priority`: "interactive" (taken first, started at once on one
        thread even when every core is busy; for small jobs someone waits
        on), "batch" (waits for a free core) or None: chosen by the job's
        size. `Job.queue_position` and `estimated_wait_seconds` say where
        it stands while QUEUED."""
        request = jobs_pb2.SubmitFitRequest(
            dataset_id=id_of(dataset, "dataset"),
            params=fit_params(**params),
            request_id=uuid.uuid4().hex,  # a retried call finds the job, not a new one
            timeout_seconds=timeout_seconds,
            no_cache=not cache,
            priority=priority_value(priority),
        )
        with self._rpc():
            response = self._jobs.SubmitFit(
                request, timeout=self.timeout, metadata=trace_metadata()
            )
        return Job(response.job, self)

    def predict(
        self,
        model: JobRef,
        dataset: DatasetRef,
        *,
        timeout_seconds: float = 0,
        priority: str | None = None,
        probabilities: bool = False,
    ) -> Job:
        """Submit a predict job with a trained model (a succeeded fit Job or
        its id) on a dataset; returns the QUEUED job at once. `priority` as
        for fit. `probabilities=True`: the predictions file holds, beside
        `y`, one column `proba_<class>` per class."""
        request = jobs_pb2.SubmitPredictRequest(
            model_id=id_of(model, "model"),
            dataset_id=id_of(dataset, "dataset"),
            request_id=uuid.uuid4().hex,
            timeout_seconds=timeout_seconds,
            priority=priority_value(priority),
            probabilities=probabilities,
        )
        with self._rpc():
            response = self._jobs.SubmitPredict(
                request, timeout=self.timeout, metadata=trace_metadata()
            )
        return Job(response.job, self)

    def predict_rows(self, model: JobRef, rows: pd.DataFrame | Sequence[Mapping[str, Any]]):
        """Predict rows now, without a job: one Predict call, answered by a
        predictor that keeps the model in memory.

        `rows`: a DataFrame (sent as Arrow, its types kept; returns a
        DataFrame with `y` and one `proba_<class>` column per class, on its
        index) or a list of dicts, column name -> value (returns a list of
        `Prediction(label, probabilities)`; needs no pandas). Columns the
        model was not trained on are ignored; a missing or mistyped one is
        FityardError INVALID_ARGUMENT naming it."""
        request = request_for(id_of(model, "model"), rows)
        with self._rpc():
            response = self._predict(request)
        return answer_of(response, rows)

    def _predict(self, request: predictions_pb2.PredictRequest) -> predictions_pb2.PredictResponse:
        """One Predict: on the pool's address if the gateway named one (and
        it has not failed), else as configured, learning the address from
        the gateway's answer."""
        routed = self._routed
        if routed is not None:
            try:
                return routed.Predict(request, timeout=self.timeout, metadata=trace_metadata())
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                with self._route_lock:  # the gateway answers this one, and the next
                    self._routed, self._may_follow = None, False
        if not self._may_follow:
            return self._predictions.Predict(
                request, timeout=self.timeout, metadata=trace_metadata()
            )
        response, call = self._predictions.Predict.with_call(
            request, timeout=self.timeout, metadata=trace_metadata()
        )
        route = route_of(call.trailing_metadata())
        with self._route_lock:  # callers on many threads learn it once
            if route and self._may_follow and self._routed is None:
                self._route_channels.append(self._pool_channel(route))
                self._routed = predictions_pb2_grpc.PredictionServiceStub(self._route_channels[-1])
        return response

    def predict_stream(
        self, model: JobRef, batches: Iterable[pd.DataFrame | Sequence[Mapping[str, Any]]]
    ) -> Iterator:
        """Predict many small batches of rows over one stream (StreamPredict):
        yields each batch's answer (as predict_rows returns it), in order, as
        it arrives. An error ends the stream: FityardError as predict_rows
        would raise it."""
        model_id = id_of(model, "model")
        sent: list = []

        def requests():
            for i, rows in enumerate(batches):
                sent.append(rows)
                yield predictions_pb2.StreamPredictRequest(
                    request=request_for(model_id, rows, request_id=str(i))
                )

        with self._rpc():
            for answer in self._predictions.StreamPredict(requests(), metadata=trace_metadata()):
                response = answer.response
                yield answer_of(response, sent[int(response.request_id)])
                sent[int(response.request_id)] = None  # answered: let it go

    def job(self, job: JobRef) -> Job:
        """One job's current record."""
        return Job(self._get_job(id_of(job, "job")), self)

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
            dataset_id=None if dataset is None else id_of(dataset, "dataset"),
            model_id=None if model is None else id_of(model, "model"),
        )
        return [Job(j, self) for j in pages]

    def cancel(self, job: JobRef) -> Job:
        """Stop a queued or running job; FAILED_PRECONDITION if it already ended."""
        return Job(self._cancel(id_of(job, "job")), self)

    def delete_dataset(self, dataset: DatasetRef) -> None:
        """Delete a dataset and its file (freeing its bytes of the stored
        quota). FailedPrecondition names a job that has not ended and uses it."""
        with self._rpc():
            self._datasets.DeleteDataset(
                datasets_pb2.DeleteDatasetRequest(dataset_id=id_of(dataset, "dataset")),
                timeout=self.timeout,
                metadata=trace_metadata(),
            )

    def delete_job(self, job: JobRef) -> None:
        """Delete an ended job and its outputs (a fit's model, a predict's
        predictions). FailedPrecondition if it has not ended, or if its
        model is in use (the message names who uses it)."""
        with self._rpc():
            self._jobs.DeleteJob(
                jobs_pb2.DeleteJobRequest(job_id=id_of(job, "job")),
                timeout=self.timeout,
                metadata=trace_metadata(),
            )

    def cancel_all(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        dataset: DatasetRef | None = None,
        model: JobRef | None = None,
    ) -> list[Job]:
        """Cancel every job that is not done and matches the keywords (as
        for `jobs`: state "QUEUED" or "RUNNING", kind, dataset, model); the
        jobs cancelled, newest first. A job that ends on its own meanwhile
        is left out, not an error. `state` must be a state a job can be
        cancelled in."""
        if state is not None and state.upper() not in _CANCELLABLE:
            raise ValueError(
                f"state must be one of {', '.join(_CANCELLABLE)} (jobs in other states are done), not {state!r}"
            )
        cancelled = []
        states = [state.upper()] if state else list(_CANCELLABLE)
        for wanted in states:
            for job in self.jobs(state=wanted, kind=kind, dataset=dataset, model=model):
                try:
                    cancelled.append(self.cancel(job))
                except FailedPrecondition:  # it ended between the list and the cancel
                    continue
        cancelled.sort(key=lambda j: (j.create_time is not None, j.create_time), reverse=True)
        return cancelled

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
                    if state_name(last.state) in TERMINAL_STATES:
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
        predictions as a pandas DataFrame (which needs pandas and pyarrow:
        the `fityard[data]` extra). `output` is "predictions" or "model"; by
        default the job's main one (a fit's model, a predict's predictions).
        FAILED_PRECONDITION if the job has not succeeded.
        """
        if output not in _OUTPUTS:
            raise ValueError(f"output must be 'model', 'predictions' or None, not {output!r}")
        if path is None:
            require_data("a download without a path (a DataFrame)")
        request = jobs_pb2.DownloadJobOutputRequest(
            job_id=id_of(job, "job"), output=_OUTPUTS[output]
        )
        call, responses, first = open_download(
            lambda: self._jobs.DownloadJobOutput(request, metadata=trace_metadata()), self.address
        )
        try:
            with self._rpc():
                info = output_info(first)
                if path is not None:
                    return receive(responses, info, Path(path), progress)
                if info.content_type != PARQUET_CONTENT_TYPE:
                    raise ValueError(
                        f"{info.filename} is not a table; pass a path to save it: c.download(job, {info.filename!r})"
                    )
                return read_frame(responses, info, progress)
        finally:
            call.cancel()  # no-op once complete; frees the stream if we stopped early

    def download_dataset(
        self, dataset: DatasetRef, path: str | os.PathLike, *, progress: bool | None = None
    ) -> Path:
        """Stream an uploaded dataset's Parquet file back to `path` (a file, or
        a directory to keep its name); return the Path."""
        request = datasets_pb2.DownloadDatasetRequest(dataset_id=id_of(dataset, "dataset"))
        call, responses, first = open_download(
            lambda: self._datasets.DownloadDataset(request, metadata=trace_metadata()), self.address
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
                return receive(responses, info, Path(path), progress)
        finally:
            call.cancel()
