"""gRPC errors with messages a user can act on.

Handlers raise `ApiError` (via the helpers below); `handle_errors` turns it
into a gRPC status with google.rpc structured details (BadRequest,
ResourceInfo, PreconditionFailure), so SDKs can read the field or resource
programmatically while people read the message. Resources are named as
the API names them (services/common/resources.py): `datasets/ds_…`,
`jobs/job_…`, in messages and details alike. Errors from an upstream
service (the scheduler) pass through unchanged, details included. A NATS
blip (timeout, no responders, reconnecting) is UNAVAILABLE, which clients
retry, not UNKNOWN. Anything else is INTERNAL with an error id and nothing
of the exception (no path, bucket, endpoint or class name): the operator's
log has the exception under the same id.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import secrets

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from .resources import Collection
from .retry import TRANSIENT

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, *details) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_status(self) -> grpc.Status:
        proto = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            proto.details.append(packed)
        return rpc_status.to_status(proto)


def invalid_argument(field: str, description: str) -> ApiError:
    """INVALID_ARGUMENT whose message and BadRequest detail name the field."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: {description}",
        error_details_pb2.BadRequest(field_violations=[violation]),
    )


def invalid_arguments(violations: list[tuple[str, str]]) -> ApiError:
    """INVALID_ARGUMENT listing every bad field at once, so a user fixes them
    all in one go."""
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in violations
        ]
    )
    message = "; ".join(f"{f}: {d}" for f, d in violations)
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message, detail)


def not_found(collection: Collection, resource_id: str, hint: str = "") -> ApiError:
    """NOT_FOUND naming the resource (`datasets/ds_…`) in the message and in
    a ResourceInfo (type: the public message's full name)."""
    name = collection.name(resource_id)
    message = f"{name} not found"
    if hint:
        message += f"; {hint}"
    return ApiError(
        grpc.StatusCode.NOT_FOUND,
        message,
        error_details_pb2.ResourceInfo(
            resource_type=collection.type, resource_name=name, description=hint
        ),
    )


def failed_precondition(subject: str, kind: str, message: str) -> ApiError:
    """FAILED_PRECONDITION with a PreconditionFailure: `subject` is the
    resource name (`jobs/job_…`), `kind` a type such as "JOB_ENDED"."""
    violation = error_details_pb2.PreconditionFailure.Violation(
        type=kind, subject=subject, description=message
    )
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        message,
        error_details_pb2.PreconditionFailure(violations=[violation]),
    )


def quota_exceeded(
    tenant: str, setting: str, limit: int, used: int, what: str, how_to_free: str
) -> ApiError:
    """RESOURCE_EXHAUSTED for a tenant over one of its quotas: the message
    says which (`what`, its setting), the limit, the use and how to free
    some; a QuotaFailure names the tenant, an ErrorInfo carries the figures
    for programs. No RetryInfo: waiting alone does not help."""
    message = (
        f"quota exceeded: {what} would be {used:,} with this request, over the limit of "
        f"{limit:,} ({setting}); {how_to_free}"
    )
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=f"tenants/{tenant}", description=message
                )
            ]
        ),
        error_details_pb2.ErrorInfo(
            reason="QUOTA_EXCEEDED",
            domain="fityard",
            metadata={"setting": setting, "limit": str(limit), "used": str(used)},
        ),
    )


def upstream_status(error: grpc.aio.AioRpcError) -> grpc.Status:
    """The status of a failed call to another of our services, details and
    all, to hand on to our own caller unchanged."""
    status = rpc_status.from_call(error)
    if status is None:
        status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
    return rpc_status.to_status(status)


def unavailable(exc: BaseException) -> ApiError:
    """A dependency (NATS, the store) failed for a moment: the caller may
    retry, which the SDK does by itself for calls that are safe to repeat."""
    log.warning("answering UNAVAILABLE: %s: %s", type(exc).__name__, exc)
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        "fityard's job store or message bus did not answer in time (it may be restarting); retry in a moment",
    )


# A dependency that did not answer: NATS's blips (retry.TRANSIENT) but of
# OSError only the network's; a file that is missing or unreadable is a bug
# or damage, not something a retry fixes.
_UNAVAILABLE = (
    *(t for t in TRANSIENT if t is not OSError),
    ConnectionError,
    TimeoutError,
)


def new_error_id() -> str:
    """A short id that ties what a user is told to the operator's log line."""
    return f"err_{secrets.token_hex(6)}"


def internal_error(what: str) -> tuple[str, str]:
    """(error id, the user's message) for an unexpected failure, which the
    caller logs with the id and the whole exception. The message holds no
    path, bucket, endpoint or exception class: only what happened, in
    words, and the id to quote."""
    error_id = new_error_id()
    return error_id, (
        f"internal error {what} (error id {error_id}); the operator's log has the details "
        "under this id: retry later, or report the id"
    )


def internal(exc: BaseException) -> ApiError:
    """INTERNAL for an exception nobody expected, logged in full under an
    error id the caller is given (with an ErrorInfo carrying it)."""
    error_id, message = internal_error("while answering this request")
    log.error("%s: %s: %s", error_id, type(exc).__name__, exc, exc_info=exc)
    return ApiError(
        grpc.StatusCode.INTERNAL,
        message,
        error_details_pb2.ErrorInfo(
            reason="INTERNAL", domain="fityard", metadata={"error_id": error_id}
        ),
    )


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, ApiError):
        await context.abort_with_status(exc.to_status())
    if isinstance(exc, grpc.aio.AioRpcError):
        await context.abort_with_status(upstream_status(exc))
    if isinstance(exc, _UNAVAILABLE):
        await context.abort_with_status(unavailable(exc).to_status())
    await context.abort_with_status(internal(exc).to_status())


def handle_errors(method):
    """Decorate a grpc.aio servicer method (unary or streaming) so that
    ApiError and upstream gRPC errors become the caller's status."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self, request, context):
            try:
                async for item in method(self, request, context):
                    yield item
            except asyncio.CancelledError:
                raise  # the client went away: nothing to tell it
            except Exception as exc:  # noqa: BLE001 - every failure gets a status
                await _abort(context, exc)

        return stream_wrapper

    @functools.wraps(method)
    async def unary_wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure gets a status
            await _abort(context, exc)

    return unary_wrapper


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def check_id(field: str, value: str, collection: Collection) -> str:
    """Reject a missing or malformed id with INVALID_ARGUMENT naming the field,
    before it reaches a KV key or an object key."""
    example = collection.example
    if not value:
        raise invalid_argument(field, f"is required (ids look like {example!r})")
    if len(value) > 64 or not set(value) <= _ID_CHARS:
        raise invalid_argument(field, f"{value!r} is not a valid id (ids look like {example!r})")
    return value
