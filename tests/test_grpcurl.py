"""grpcurl, the tool a gRPC user reaches for first, works against the gateway."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.grpcurl import GRPCURL, grpcurl

pytestmark = pytest.mark.stack


def test_list_shows_public_services_and_health(local_stack):
    services = grpcurl(local_stack.address, "list").split()
    assert "fityard.v1.DatasetService" in services
    assert "fityard.v1.JobService" in services
    assert "grpc.health.v1.Health" in services
    # the scheduler's internal API is not exposed by the gateway
    assert not any("internal" in s for s in services)


def test_describe_shows_rpcs(local_stack):
    described = grpcurl(local_stack.address, "describe", "fityard.v1.JobService")
    for rpc in [
        "SubmitFit",
        "SubmitPredict",
        "GetJob",
        "WatchJob",
        "ListJobs",
        "CancelJob",
        "DownloadJobOutput",
    ]:
        assert f"rpc {rpc}" in described


def test_health_check_and_a_call(local_stack):
    assert '"SERVING"' in grpcurl(local_stack.address, "grpc.health.v1.Health/Check")
    listed = grpcurl("-d", "{}", local_stack.address, "fityard.v1.JobService/ListJobs")
    assert listed.strip().startswith("{")


def test_unknown_job_is_not_found_naming_the_id(local_stack):
    result = subprocess.run(
        [
            GRPCURL,
            "-plaintext",
            "-d",
            '{"job_id": "job_doesnotexist00"}',
            local_stack.address,
            "fityard.v1.JobService/GetJob",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "NotFound" in result.stderr and "job_doesnotexist00" in result.stderr
