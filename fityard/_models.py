"""What the SDK hands back: `Dataset` (an uploaded file as the server
describes it) and `Job` (a fit or predict job, with the calls that follow
it: refresh, watch, wait, cancel, download).

Both wrap the server's fityard.v1 messages and read them in plain Python
(states and kinds as strings, timestamps as aware datetimes). A `Job` keeps
the `Client` that made it and asks it for every server call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Union

from google.protobuf import json_format, struct_pb2

from fityard._errors import JobFailed, JobTimeout
from fityard.v1 import datasets_pb2, jobs_pb2

if TYPE_CHECKING:
    from fityard.client import Client

# The states a job never leaves.
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def state_name(state: int) -> str:
    """A JobState value as the SDK spells it: "QUEUED", "RUNNING", ..."""
    return jobs_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


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
        """The Dataset a fityard.v1.Dataset message describes."""
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


def label_of(value: struct_pb2.Value) -> Any:
    """A class label from the wire as Python: a whole number as int (labels
    0/1 come back as 0/1, not 0.0/1.0), a text as str, a boolean as bool."""
    native = json_format.MessageToDict(value)
    if isinstance(native, float) and native.is_integer():
        return int(native)
    return native


@dataclass(frozen=True)
class FitMetrics:
    """A succeeded fit's model and its score on rows it was not trained on.

    The held-out rows are `sklearn.model_selection.train_test_split(rows,
    test_size=validation_fraction, stratify=y, random_state=validation_seed)`
    of the training file's rows in file order: the split early stopping used,
    or the one asked for with the `validation_fraction` fit parameter. With
    no rows held out (`validation_rows == 0`) there is no score: the
    accuracy and log-loss are None, never a score on training rows."""

    classes: list = field(hash=False)
    # feature name -> type fitted as ("category", or the Arrow type: "double"…)
    features: dict[str, str] = field(hash=False)
    n_iter: int
    fit_seconds: float
    model_size_bytes: int
    train_rows: int
    validation_rows: int
    validation_fraction: float
    validation_seed: int
    validation_accuracy: float | None
    validation_log_loss: float | None

    @classmethod
    def from_proto(cls, message: jobs_pb2.FitMetrics) -> FitMetrics:
        held_out = message.validation_rows > 0
        return cls(
            classes=[label_of(value) for value in message.classes],
            features={column.name: column.type for column in message.features},
            n_iter=message.n_iter,
            fit_seconds=message.fit_seconds,
            model_size_bytes=message.model_size_bytes,
            train_rows=message.train_rows,
            validation_rows=message.validation_rows,
            validation_fraction=message.validation_fraction,
            validation_seed=message.validation_seed,
            validation_accuracy=message.validation_accuracy if held_out else None,
            validation_log_loss=message.validation_log_loss if held_out else None,
        )


@dataclass(frozen=True)
class Prediction:
    """One row's online prediction (Client.predict_rows): the predicted
    label (the most probable class) and each class's probability (they sum
    to 1)."""

    label: Any
    probabilities: dict[Any, float] = field(hash=False)


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
        """The job's id ("job_…"); for a fit job, also its model's id."""
        return self._message.id

    @property
    def kind(self) -> str:
        """ "fit" or "predict"."""
        return jobs_pb2.JobKind.Name(self._message.kind).removeprefix("JOB_KIND_").lower()

    @property
    def state(self) -> str:
        """ "QUEUED", "RUNNING", "SUCCEEDED", "FAILED" or "CANCELLED"."""
        return state_name(self._message.state)

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
        """What the job is doing now, e.g. "fitting"."""
        return self._message.progress_message

    @property
    def error(self) -> str:
        """For a FAILED job, what went wrong and how to fix it; else empty."""
        return self._message.error

    @property
    def dataset_id(self) -> str:
        """The dataset the job fits on or predicts for."""
        return self._message.dataset_id

    @property
    def model_id(self) -> str:
        """The model a predict job uses; for a fit job, its own id (the model it trains)."""
        return self._message.model_id or (self.id if self.kind == "fit" else "")

    @property
    def attempts(self) -> int:
        """Times a trainer has started this job (a lost run or a hand-back starts another)."""
        return self._message.attempts

    @property
    def lost_attempts(self) -> int:
        """Attempts that ended because the process running them died
        (killed, out of memory); the server retries up to its limit."""
        return self._message.lost_attempts

    @property
    def priority(self) -> str:
        """ "INTERACTIVE" or "BATCH": the queue it waits in (asked for, or
        chosen by the server from its size)."""
        return jobs_pb2.Priority.Name(self._message.priority).removeprefix("PRIORITY_")

    @property
    def queue_position(self) -> int:
        """While QUEUED: 1 + the jobs ahead of it in its queue (0: not
        queued, or not known yet)."""
        return self._message.queue_position

    @property
    def estimated_wait_seconds(self) -> float:
        """While QUEUED: about how long until it starts (0: not known)."""
        return self._message.estimated_wait_seconds

    @property
    def cached(self) -> bool:
        """A fit answered from the cache: its model is `cached_from`'s (the
        same dataset bytes and parameters, with a fixed random_state), and
        nothing was trained for it."""
        return self._message.cached

    @property
    def cached_from(self) -> str:
        """For a cached fit: the fit job whose model this job's is."""
        return self._message.cached_from

    @property
    def trace_id(self) -> str:
        """The job's trace (32 hex digits; `fityard trace JOB_ID` shows it),
        "" if the server was not tracing when it was submitted."""
        return self._message.trace_id

    @property
    def timeout_seconds(self) -> float:
        """The most this job may run before it FAILS with "timed out"."""
        return self._message.timeout_seconds

    @property
    def rows(self) -> int:
        """Rows trained on (fit) or predicted (predict), once known."""
        return self._message.rows

    @property
    def params(self) -> dict[str, Any]:
        """The fit parameters that were set (unset ones keep scikit-learn's defaults)."""
        p = self._message.params
        return {f.name: getattr(p, f.name) for f in p.DESCRIPTOR.fields if p.HasField(f.name)}

    @property
    def metrics(self) -> FitMetrics | None:
        """A succeeded fit's metrics (classes, features, n_iter_, fit time,
        model size, held-out score); None for a predict job or a fit that
        has not succeeded."""
        if not self._message.HasField("metrics"):
            return None
        return FitMetrics.from_proto(self._message.metrics)

    @property
    def probabilities(self) -> bool:
        """A predict job asked for class probabilities (proba_<class> columns)."""
        return self._message.probabilities

    @property
    def outputs(self) -> list[str]:
        """What can be downloaded once SUCCEEDED: "model" and/or "predictions"."""
        return [
            jobs_pb2.JobOutput.Name(o).removeprefix("JOB_OUTPUT_").lower()
            for o in self._message.outputs
        ]

    @property
    def create_time(self) -> datetime | None:
        """When the job was submitted (aware, UTC)."""
        return _datetime(self._message.create_time)

    @property
    def start_time(self) -> datetime | None:
        """When it started running; None until then."""
        return _datetime(self._message.start_time)

    @property
    def end_time(self) -> datetime | None:
        """When it ended; None until it is done."""
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


def id_of(ref: Any, what: str) -> str:
    """The id of a Dataset/Job, or the string itself: methods take either."""
    if isinstance(ref, str):
        return ref
    ref_id = getattr(ref, "id", None)
    if isinstance(ref_id, str):
        return ref_id
    raise TypeError(f"{what} must be an id string or an object with .id, not {type(ref).__name__}")
