"""The SDK's exceptions (pure logic, no server): one class per status code,
the server's details in plain Python (the public names: test_public_api.py)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2

import fityard
from fityard._errors import error_for, invalid_argument


@pytest.mark.parametrize(
    "code, cls",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, fityard.InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, fityard.NotFound),
        (grpc.StatusCode.FAILED_PRECONDITION, fityard.FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, fityard.ResourceExhausted),
        (grpc.StatusCode.UNAVAILABLE, fityard.Unavailable),
        (grpc.StatusCode.UNKNOWN, fityard.FityardError),
    ],
)
def test_each_status_code_has_its_class_and_all_are_fityard_errors(code, cls):
    error = error_for(code, "what the server said")
    assert type(error) is cls and isinstance(error, fityard.FityardError)
    assert str(error) == f"{code.name}: what the server said" and error.code == code


def test_details_read_as_plain_python():
    details = (
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="params.max_bins", description="too big"
                )
            ]
        ),
        error_details_pb2.ResourceInfo(resource_type="dataset", resource_name="ds_1"),
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="MODEL_NOT_READY", subject="jobs/j", description="d"
                )
            ]
        ),
        error_details_pb2.RetryInfo(retry_delay=Duration(seconds=1, nanos=500_000_000)),
    )
    error = error_for(grpc.StatusCode.INVALID_ARGUMENT, "m", details)
    assert error.field_violations == [("params.max_bins", "too big")]
    assert error.resource == ("dataset", "ds_1")
    assert error.precondition_violations == [("MODEL_NOT_READY", "jobs/j", "d")]
    assert error.retry_delay == 1.5
    bare = error_for(grpc.StatusCode.NOT_FOUND, "m")
    assert (bare.field_violations, bare.resource, bare.retry_delay) == ([], None, None)


def test_the_sdks_own_refusals_look_like_the_servers():
    error = invalid_argument("params.max_iters", "is not a fit parameter")
    assert isinstance(error, fityard.InvalidArgument)
    assert str(error) == "INVALID_ARGUMENT: params.max_iters: is not a fit parameter"
    assert error.field_violations == [("params.max_iters", "is not a fit parameter")]
