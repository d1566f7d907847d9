"""The internal hops: with FITYARD_INTERNAL_TOKEN the scheduler takes
commands only from a caller with the token (the gateway, which sends it),
so nobody who reaches its port can submit as any tenant; a scheduler
exposed beyond loopback without a token does not start; NATS turns away a
client without its token."""

from __future__ import annotations

import grpc
import pandas as pd
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fityard import Client
from fityard.v1 import jobs_pb2
from services.common.internal_auth import HEADER
from services.embedded import EmbeddedStack
from services.internal.v1 import scheduler_pb2, scheduler_pb2_grpc
from tests.support.exposure import start_exposed
from tests.support.jobs import nats_refuses_without_a_token

pytestmark = pytest.mark.stack

TOKEN = "a-shared-internal-token"


def test_the_scheduler_takes_commands_only_with_the_token(tmp_path):
    env = {"FITYARD_INTERNAL_TOKEN": TOKEN}
    with EmbeddedStack(tmp_path / "stack", trainers=1, env=env) as stack:
        with Client(stack.address) as client:  # the gateway sends the token
            dataset = client.upload(pd.DataFrame({"col_0": [0.0, 1.0] * 10, "y": [0, 1] * 10}))
            assert client.fit(dataset, max_iter=5).wait(timeout=120).state == "SUCCEEDED"
        submit = scheduler_pb2.SubmitJobRequest(
            tenant="someone-else", kind=jobs_pb2.JOB_KIND_FIT, dataset_id=dataset.id
        )
        with grpc.insecure_channel(f"127.0.0.1:{stack.scheduler_port}") as channel:
            scheduler = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            for metadata in [(), ((HEADER, "not-the-token"),)]:
                with pytest.raises(grpc.RpcError) as refused:
                    scheduler.SubmitJob(submit, metadata=metadata, timeout=10)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "FITYARD_INTERNAL_TOKEN" in refused.value.details()
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes stay open
        # and NATS itself wants the token the services were given
        assert nats_refuses_without_a_token(stack.nats_port)


def test_a_scheduler_exposed_beyond_loopback_without_a_token_does_not_start():
    scheduler = start_exposed(
        "services.scheduler", "FITYARD_SCHEDULER_LISTEN", "FITYARD_INTERNAL_TOKEN"
    )
    assert scheduler.returncode != 0
    assert "without FITYARD_INTERNAL_TOKEN" in scheduler.stderr
