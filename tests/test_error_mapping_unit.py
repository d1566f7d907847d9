"""Errors from the server's handlers to the SDK's exceptions, without a
server: what a handler raises (services/common/errors.py), the status and
google.rpc details that go on the wire, and what the SDK makes of them
(fityard/_errors.py): the class, the message, the field, the resource, the
retry delay. The classes and their details as plain Python:
tests/test_errors.py."""

from __future__ import annotations

import asyncio
import logging
import re

import grpc
import nats.errors
import nats.js.errors
import pytest
from google.protobuf import any_pb2
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

import fityard
from fityard._errors import error_from
from services.common import errors
from services.common.resources import DATASETS, JOBS
from tests.support.rpc import ADDRESS, FailedCall, seen_by_client


def status_call(code: int, message: str, *details, call_code=None) -> FailedCall:
    """A failed call carrying a google.rpc.Status with `details`."""
    proto = status_pb2.Status(code=code, message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        proto.details.append(packed)
    status = rpc_status.to_status(proto)
    if call_code is not None:  # a call whose own code disagrees with the details'
        return FailedCall(code=call_code, details=message, trailing=status.trailing_metadata)
    return FailedCall(status)


def bad_request(*violations: tuple[str, str]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in violations
        ]
    )


# -- the SDK: a failed call becomes an exception -----------------------------------


def test_a_bad_request_becomes_invalid_argument_listing_each_field():
    call = status_call(
        code_pb2.INVALID_ARGUMENT,
        "params.max_bins: must be between 2 and 255 (got 300); params.l2: unknown",
        bad_request(
            ("params.max_bins", "must be between 2 and 255 (got 300)"), ("params.l2", "unknown")
        ),
    )
    error = error_from(call, ADDRESS)
    assert type(error) is fityard.InvalidArgument
    assert error.field_violations == [
        ("params.max_bins", "must be between 2 and 255 (got 300)"),
        ("params.l2", "unknown"),
    ]
    assert str(error).startswith("INVALID_ARGUMENT: params.max_bins: must be between 2 and 255")


def test_resource_info_says_which_resource_was_not_found():
    call = status_call(
        code_pb2.NOT_FOUND,
        "datasets/ds_0 not found",
        error_details_pb2.ResourceInfo(
            resource_type="fityard.v1.Dataset", resource_name="datasets/ds_0"
        ),
    )
    error = error_from(call, ADDRESS)
    assert type(error) is fityard.NotFound
    assert error.resource == ("fityard.v1.Dataset", "datasets/ds_0")
    assert error.field_violations == [] and error.retry_delay is None


def test_retry_info_gives_the_delay_in_seconds():
    call = status_call(
        code_pb2.RESOURCE_EXHAUSTED,
        "busy",
        error_details_pb2.RetryInfo(retry_delay=Duration(seconds=2, nanos=250_000_000)),
    )
    error = error_from(call, ADDRESS)
    assert type(error) is fityard.ResourceExhausted and error.retry_delay == 2.25


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN]
)
def test_a_code_without_a_class_of_its_own_is_a_plain_fityard_error(code):
    error = error_from(FailedCall(code=code, details="what the server said"), ADDRESS)
    assert type(error) is fityard.FityardError
    assert error.code == code and str(error) == f"{code.name}: what the server said"


def test_an_unreachable_server_says_where_it_looked_and_how_to_start_one():
    call = FailedCall(
        code=grpc.StatusCode.UNAVAILABLE, details="failed to connect to all addresses"
    )
    error = error_from(call, "127.0.0.1:1")
    assert type(error) is fityard.Unavailable
    assert "failed to connect to all addresses" in error.message
    assert "fityard at 127.0.0.1:1" in error.message and "`fityard up`" in error.message


def test_an_error_that_is_not_a_call_is_unknown_with_its_text():
    error = error_from(grpc.RpcError("the channel broke"), ADDRESS)
    assert type(error) is fityard.FityardError and error.code == grpc.StatusCode.UNKNOWN
    assert "the channel broke" in error.message


def test_details_that_contradict_the_calls_status_are_dropped_not_a_crash():
    call = status_call(
        code_pb2.INVALID_ARGUMENT,
        "m",
        bad_request(("name", "bad")),
        call_code=grpc.StatusCode.NOT_FOUND,
    )
    error = error_from(call, ADDRESS)
    assert type(error) is fityard.NotFound and error.details == ()


def test_unknown_detail_types_are_skipped_and_known_ones_kept():
    call = status_call(
        code_pb2.INVALID_ARGUMENT,
        "m",
        error_details_pb2.DebugInfo(detail="a server stack trace"),
        bad_request(("filter", "bad")),
        Duration(seconds=1),  # not a google.rpc detail at all
    )
    error = error_from(call, ADDRESS)
    assert error.field_violations == [("filter", "bad")]
    assert [type(d).__name__ for d in error.details] == ["BadRequest"]


# -- the server's helpers, as the SDK sees them ------------------------------------


def test_one_bad_field_is_named_in_the_message_and_the_details():
    error = errors.invalid_argument("params.max_bins", "must be between 2 and 255 (got 300)")
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "params.max_bins: must be between 2 and 255 (got 300)"
    seen = seen_by_client(error)
    assert type(seen) is fityard.InvalidArgument
    assert seen.field_violations == [("params.max_bins", "must be between 2 and 255 (got 300)")]


def test_every_bad_field_is_reported_at_once_in_order():
    violations = [("params.max_bins", "too big"), ("params.learning_rate", "must be > 0")]
    error = errors.invalid_arguments(violations)
    assert error.message == "params.max_bins: too big; params.learning_rate: must be > 0"
    assert seen_by_client(error).field_violations == violations


def test_not_found_names_the_resource_as_the_api_does():
    error = errors.not_found(DATASETS, "ds_0", "list them with `fityard datasets`")
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.message == "datasets/ds_0 not found; list them with `fityard datasets`"
    seen = seen_by_client(error)
    assert type(seen) is fityard.NotFound
    assert seen.resource == ("fityard.v1.Dataset", "datasets/ds_0")


def test_a_failed_precondition_says_what_and_on_which_resource():
    error = errors.failed_precondition(
        JOBS.name("job_1"), "MODEL_NOT_READY", "job_1 has not succeeded"
    )
    seen = seen_by_client(error)
    assert type(seen) is fityard.FailedPrecondition
    assert seen.precondition_violations == [
        ("MODEL_NOT_READY", "jobs/job_1", "job_1 has not succeeded")
    ]
    assert str(seen) == "FAILED_PRECONDITION: job_1 has not succeeded"


@pytest.mark.parametrize(
    "value, says",
    [
        ("", f"job_id: is required (ids look like {JOBS.example!r})"),
        ("job/../x", "job_id: 'job/../x' is not a valid id"),
        ("j" * 65, "is not a valid id"),
        ("job 1", "is not a valid id"),
    ],
)
def test_a_missing_or_malformed_id_is_refused_naming_the_field_and_showing_an_example(value, says):
    with pytest.raises(errors.ApiError) as raised:
        errors.check_id("job_id", value, JOBS)
    assert says in raised.value.message
    assert seen_by_client(raised.value).field_violations[0][0] == "job_id"


def test_a_well_formed_id_passes_unchanged():
    assert errors.check_id("dataset_id", "ds_3f9c1a2b-4d5E", DATASETS) == "ds_3f9c1a2b-4d5E"


# -- handle_errors: what a handler's exception becomes ---------------------------------


class Aborted(Exception):
    """grpc.aio's abort: the handler stops here."""


class Context:
    def __init__(self):
        self.status: grpc.Status | None = None

    async def abort_with_status(self, status: grpc.Status):
        self.status = status
        raise Aborted


class Service:
    def __init__(self, exc: BaseException):
        self.exc = exc

    @errors.handle_errors
    async def Unary(self, request, context):
        raise self.exc

    @errors.handle_errors
    async def Stream(self, request, context):
        yield "first"
        raise self.exc


def answer(exc: BaseException, streaming: bool = False) -> fityard.FityardError:
    """What a client of a handler that raised `exc` receives."""
    context = Context()

    async def call():
        service = Service(exc)
        if streaming:
            async for _ in service.Stream(None, context):
                pass
        else:
            await service.Unary(None, context)

    with pytest.raises(Aborted):
        asyncio.run(call())
    return error_from(FailedCall(context.status), ADDRESS)


@pytest.mark.parametrize("streaming", [False, True])
def test_an_api_error_reaches_the_client_with_its_details(streaming):
    seen = answer(errors.invalid_argument("filter", "cannot filter on 'colour'"), streaming)
    assert type(seen) is fityard.InvalidArgument
    assert seen.field_violations == [("filter", "cannot filter on 'colour'")]


@pytest.mark.parametrize(
    "blip",
    [
        nats.errors.TimeoutError(),
        nats.errors.NoRespondersError(),
        nats.errors.ConnectionReconnectingError(),
        nats.js.errors.ServiceUnavailableError(),
        asyncio.TimeoutError(),
        ConnectionResetError("reset by peer"),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("streaming", [False, True])
def test_a_nats_blip_is_unavailable_which_clients_retry(blip, streaming):
    seen = answer(blip, streaming)
    assert type(seen) is fityard.Unavailable
    assert "did not answer in time (it may be restarting); retry in a moment" in seen.message


@pytest.mark.parametrize("streaming", [False, True])
def test_a_bug_is_internal_with_an_error_id_and_nothing_of_the_exception(streaming, caplog):
    """Not disguised as UNAVAILABLE (nothing to retry), and nothing of the
    exception reaches the client: its class, its path, its bucket are in
    the log line that carries the same error id."""
    bug = FileNotFoundError(2, "No such file", "/srv/fityard/objects/tenants/t/secret.parquet")
    with caplog.at_level(logging.ERROR, logger=errors.log.name):
        seen = answer(bug, streaming)
    assert seen.code == grpc.StatusCode.INTERNAL
    (error_id,) = re.findall(r"err_[0-9a-f]{12}", seen.message)
    for internal in ("FileNotFoundError", "/srv/fityard", "secret.parquet", "No such file"):
        assert internal not in seen.message
    (line,) = [r for r in caplog.records if error_id in r.getMessage()]
    assert "FileNotFoundError" in line.getMessage() and "/srv/fityard" in line.getMessage()
    (info,) = [d for d in seen.details if d.DESCRIPTOR.name == "ErrorInfo"]
    assert info.metadata["error_id"] == error_id


def test_an_upstream_services_error_passes_through_with_its_details():
    status = errors.not_found(JOBS, "job_9").to_status()
    upstream = grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )
    seen = answer(upstream)
    assert type(seen) is fityard.NotFound
    assert seen.message == "jobs/job_9 not found"
    assert seen.resource == ("fityard.v1.Job", "jobs/job_9")
