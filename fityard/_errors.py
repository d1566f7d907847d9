"""The exceptions the SDK raises, one class per way a request can fail, so
callers write `except NotFound:` instead of comparing status codes.

    FityardError                a request fityard refused or could not serve
    ├── InvalidArgument         a field is wrong: .field_violations names it
    ├── NotFound                an id names nothing: .resource says what
    ├── AlreadyExists
    ├── FailedPrecondition      not now: the job has not succeeded, has ended …
    ├── ResourceExhausted       a limit was reached: .retry_delay when worth retrying
    ├── Unavailable             fityard is not reachable (or restarting)
    ├── DeadlineExceeded
    ├── PermissionDenied
    ├── Unauthenticated
    ├── DataLoss
    ├── Internal
    └── JobFailed               the request worked, the job did not (.job; code None)
    JobTimeout (TimeoutError)   a wait ran out; the job carries on

Every FityardError keeps the server's message unchanged (`str(exc)` is
``NOT_FOUND: datasets/ds_x not found; …``) and the google.rpc details the
server attached, read with grpc_status: `field_violations`, `resource`,
`precondition_violations`, `retry_delay` are those details in plain Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2

if TYPE_CHECKING:
    from fityard._models import Job


class FityardError(Exception):
    """A request fityard refused or could not serve.

    `code` is the grpc.StatusCode, `message` the server's own words, and
    `details` the google.rpc detail messages it attached (BadRequest,
    ResourceInfo, PreconditionFailure, RetryInfo, ...).
    """

    def __init__(
        self, code: grpc.StatusCode | None, message: str, *, details: tuple[Message, ...] = ()
    ):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" if self.code is not None else self.message

    def _detail(self, cls: type[Message]) -> list:
        return [d for d in self.details if isinstance(d, cls)]

    @property
    def field_violations(self) -> list[tuple[str, str]]:
        """(field, what is wrong with it), e.g. ("params.max_bins", "must be between 2 and 255 (got 300)")."""
        return [
            (v.field, v.description)
            for d in self._detail(error_details_pb2.BadRequest)
            for v in d.field_violations
        ]

    @property
    def resource(self) -> tuple[str, str] | None:
        """(type, name) of the resource the error is about, e.g.
        ("fityard.v1.Dataset", "datasets/ds_…"): the message's full name and the
        resource's name (collection/id; a model is its fit job, "jobs/job_…")."""
        found = self._detail(error_details_pb2.ResourceInfo)
        return (found[0].resource_type, found[0].resource_name) if found else None

    @property
    def precondition_violations(self) -> list[tuple[str, str, str]]:
        """(type, subject, description), e.g. ("MODEL_NOT_READY", "jobs/job_…", "…")."""
        return [
            (v.type, v.subject, v.description)
            for d in self._detail(error_details_pb2.PreconditionFailure)
            for v in d.violations
        ]

    @property
    def quota(self) -> dict[str, str]:
        """For a quota refusal: {"setting", "limit", "used"}, e.g.
        {"setting": "FITYARD_QUOTA_ACTIVE_JOBS", "limit": "10000", "used": "10001"}."""
        found = [
            d for d in self._detail(error_details_pb2.ErrorInfo) if d.reason == "QUOTA_EXCEEDED"
        ]
        return dict(found[0].metadata) if found else {}

    @property
    def retry_delay(self) -> float | None:
        """Seconds the server asks to wait before retrying, if it says so."""
        found = self._detail(error_details_pb2.RetryInfo)
        return found[0].retry_delay.seconds + found[0].retry_delay.nanos / 1e9 if found else None


class InvalidArgument(FityardError):
    """A field of the request is wrong; `field_violations` names each one."""


class NotFound(FityardError):
    """An id names nothing the caller can see; `resource` says which."""


class AlreadyExists(FityardError):
    """What the request would create exists already."""


class FailedPrecondition(FityardError):
    """The request is valid but not now (e.g. predicting with a model whose fit has not succeeded)."""


class ResourceExhausted(FityardError):
    """A limit was reached (transfers at once, message size); `retry_delay` is set when a retry will help."""


class Unavailable(FityardError):
    """fityard did not answer (not running, restarting, unreachable)."""


class DeadlineExceeded(FityardError):
    """The call took longer than its deadline (`Client(timeout=...)` for quick calls)."""


class PermissionDenied(FityardError):
    """The caller may not do this."""


class Unauthenticated(FityardError):
    """The request carried no valid credentials."""


class DataLoss(FityardError):
    """Bytes were lost or changed on the way (a transfer whose hash or size does not match); do it again."""


class Internal(FityardError):
    """fityard failed in a way that is not the caller's doing; the message says what happened."""


_BY_CODE: dict[grpc.StatusCode, type[FityardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.INTERNAL: Internal,
}

# The google.rpc detail messages the server attaches, by type URL.
_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.ErrorInfo,
)


def error_for(
    code: grpc.StatusCode, message: str, details: tuple[Message, ...] = ()
) -> FityardError:
    """The exception of the class that goes with `code`."""
    return _BY_CODE.get(code, FityardError)(code, message, details=details)


def invalid_argument(field: str, description: str) -> InvalidArgument:
    """What the SDK raises for a request it refuses before sending it,
    shaped as the server's own refusal."""
    violation = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        ]
    )
    return InvalidArgument(
        grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {description}", details=(violation,)
    )


def error_from(error: grpc.RpcError, address: str) -> FityardError:
    """The exception for a failed call: its class from the status code, its
    details unpacked from the call's trailing metadata."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(error)
    if code == grpc.StatusCode.UNAVAILABLE:
        # Usually nothing is listening; say where we looked and what to do.
        message = f"{message} (fityard at {address}; is it running? `fityard up` starts one)"
    return error_for(code, message, _details_of(error))


def _details_of(error: grpc.RpcError) -> tuple[Message, ...]:
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
    except ValueError:  # details that do not match the call's status
        return ()
    if status is None:
        return ()
    unpacked = []
    for packed in status.details:
        for cls in _DETAIL_TYPES:
            if packed.Is(cls.DESCRIPTOR):
                detail = cls()
                packed.Unpack(detail)
                unpacked.append(detail)
    return tuple(unpacked)


class JobFailed(FityardError):
    """A job ended FAILED. `str(exc)` is the job's `error` (what went wrong
    and how to fix it), `exc.job` the finished job. `code` is None: the
    request itself succeeded, the work did not."""

    def __init__(self, job: Job):
        super().__init__(None, job.error or f"job {job.id!r} failed without a message")
        self.job = job


class JobTimeout(TimeoutError):
    """A wait or watch ran out of time before the job ended. The job itself
    carries on, on the server. `job` is its last known snapshot (None if it
    could not be read), `job_id` its id, `timeout` the seconds waited; the
    message says where the job is:

        job job_… is still RUNNING (42%, fitting) after 30 s; it carries on: wait again or cancel it
    """

    def __init__(self, job_id: str, job: Job | None, timeout: float):
        self.job_id = job_id
        self.job = job
        self.timeout = timeout
        if job is None:
            where = (
                f"job {job_id} did not finish within {timeout:g} s (its state could not be read)"
            )
        else:
            progress = ", ".join(p for p in (f"{job.progress:.0%}", job.progress_message) if p)
            where = f"job {job_id} is still {job.state} ({progress}) after {timeout:g} s"
        super().__init__(f"{where}; it carries on: wait again or cancel it")
