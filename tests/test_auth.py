"""API keys and tenants on a real stack whose gateway requires keys: every
public RPC refuses a call without a key or with a wrong one
(UNAUTHENTICATED), and answers tenant A's key on tenant B's datasets, jobs
and outputs as if they did not exist (NOT_FOUND), while B's job runs on
unaffected. Keys are rotated without a restart; a gateway exposed beyond
loopback without keys does not start."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pandas as pd
import pytest

from fityard import Client, NotFound, Unauthenticated
from fityard._auth import BearerKey
from fityard.v1 import (
    datasets_pb2,
    datasets_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    predictions_pb2,
    predictions_pb2_grpc,
)
from services.common.api_keys import mint
from services.embedded import EmbeddedStack
from tests.support.exposure import start_exposed
from tests.support.jobs import long_fit, wait_for_state

pytestmark = pytest.mark.stack

WAIT = 120


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    return tmp_path_factory.mktemp("keys") / "api-keys"


@pytest.fixture(scope="module")
def keys(keys_file):
    return {"a": mint("tenant-a", keys_file), "b": mint("tenant-b", keys_file)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, keys, keys_file):
    env = {"FITYARD_API_KEYS_FILE": str(keys_file)}
    with EmbeddedStack(
        tmp_path_factory.mktemp("auth"), trainers=1, predictors=1, env=env
    ) as running:
        yield running


@pytest.fixture(scope="module")
def world(stack, keys, seed_files, tmp_path_factory):
    """Tenant B's dataset, succeeded fit and predict, and a long fit that
    keeps RUNNING through the matrix."""
    with Client(stack.address, api_key=keys["b"]) as b:
        train = b.upload(seed_files["train"])
        fit = b.fit(train, max_iter=5).wait(timeout=WAIT)
        predict = b.predict(fit, b.upload(seed_files["test"])).wait(timeout=WAIT)
        running = wait_for_state(long_fit(b, train.id, priority="batch"), "RUNNING")
        yield {"dataset": train.id, "fit": fit.id, "predict": predict.id, "running": running}
        b.cancel_all()


def _calls(stub_d, stub_j, stub_p, ids: dict, own_dataset: str) -> dict:
    """Every public RPC, aimed at tenant B's ids where it takes one."""
    row = predictions_pb2.PredictRequest(model_id=ids["fit"])
    row.rows.add().update({f"col_{i}": 0.5 for i in range(50)})

    def upload():
        header = datasets_pb2.UploadRequest(header=datasets_pb2.UploadHeader(name="x.parquet"))
        return stub_d.Upload(iter([header]), timeout=10)

    return {
        "Upload": upload,
        "GetDataset": lambda: stub_d.GetDataset(
            datasets_pb2.GetDatasetRequest(dataset_id=ids["dataset"]), timeout=10
        ),
        "ListDatasets": lambda: stub_d.ListDatasets(datasets_pb2.ListDatasetsRequest(), timeout=10),
        "DownloadDataset": lambda: list(
            stub_d.DownloadDataset(
                datasets_pb2.DownloadDatasetRequest(dataset_id=ids["dataset"]), timeout=10
            )
        ),
        "DeleteDataset": lambda: stub_d.DeleteDataset(
            datasets_pb2.DeleteDatasetRequest(dataset_id=ids["dataset"]), timeout=10
        ),
        "SubmitFit": lambda: stub_j.SubmitFit(
            jobs_pb2.SubmitFitRequest(dataset_id=ids["dataset"]), timeout=10
        ),
        "SubmitPredict": lambda: stub_j.SubmitPredict(
            jobs_pb2.SubmitPredictRequest(model_id=ids["fit"], dataset_id=own_dataset), timeout=10
        ),
        "GetJob": lambda: stub_j.GetJob(jobs_pb2.GetJobRequest(job_id=ids["fit"]), timeout=10),
        "WatchJob": lambda: list(
            stub_j.WatchJob(jobs_pb2.WatchJobRequest(job_id=ids["running"].id), timeout=10)
        ),
        "ListJobs": lambda: stub_j.ListJobs(jobs_pb2.ListJobsRequest(), timeout=10),
        "CancelJob": lambda: stub_j.CancelJob(
            jobs_pb2.CancelJobRequest(job_id=ids["running"].id), timeout=10
        ),
        "DownloadJobOutput": lambda: list(
            stub_j.DownloadJobOutput(
                jobs_pb2.DownloadJobOutputRequest(job_id=ids["predict"]), timeout=10
            )
        ),
        "DeleteJob": lambda: stub_j.DeleteJob(
            jobs_pb2.DeleteJobRequest(job_id=ids["predict"]), timeout=10
        ),
        "Predict": lambda: stub_p.Predict(row, timeout=10),
        "StreamPredict": lambda: list(
            stub_p.StreamPredict(
                iter([predictions_pb2.StreamPredictRequest(request=row)]), timeout=10
            )
        ),
    }


PUBLIC_RPCS = {
    *datasets_pb2.DESCRIPTOR.services_by_name["DatasetService"].methods_by_name,
    *jobs_pb2.DESCRIPTOR.services_by_name["JobService"].methods_by_name,
    *predictions_pb2.DESCRIPTOR.services_by_name["PredictionService"].methods_by_name,
}


def _stubs(stack, key: str | None, predict_address: str = ""):
    """Stubs of the three services, through the gateway (predictions too,
    unless `predict_address` names the predictor pool to call directly)."""

    def channel(address: str):
        opened = grpc.insecure_channel(address)
        return grpc.intercept_channel(opened, BearerKey(key)) if key is not None else opened

    gateway = channel(stack.address)
    predictions = channel(predict_address) if predict_address else gateway
    return (
        datasets_pb2_grpc.DatasetServiceStub(gateway),
        jobs_pb2_grpc.JobServiceStub(gateway),
        predictions_pb2_grpc.PredictionServiceStub(predictions),
    )


@pytest.mark.parametrize(
    ("who", "message"),
    [(None, "needs an API key"), ("fy_not-a-key", "not one this fityard knows")],
    ids=["no key", "wrong key"],
)
def test_every_rpc_refuses_a_caller_without_a_valid_key(stack, world, who, message):
    calls = _calls(*_stubs(stack, who), world, own_dataset=world["dataset"])
    assert set(calls) == PUBLIC_RPCS  # the matrix covers the whole API
    # and the predictor pool, called directly, checks keys as the gateway does
    direct = _calls(*_stubs(stack, who, stack.predict_address), world, world["dataset"])
    calls.update({f"{name} (predictor)": direct[name] for name in ("Predict", "StreamPredict")})
    for name, call in calls.items():
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert message in refused.value.details(), name
    assert world["running"].refresh().state == "RUNNING"


def test_another_tenants_ids_are_not_found_and_its_job_runs_on(stack, keys, world):
    with Client(stack.address, api_key=keys["a"]) as a:
        own = a.upload(pd.DataFrame({"col_0": [0.0, 1.0, 2.0, 3.0] * 5, "y": [0, 1] * 10}))
        calls = _calls(*_stubs(stack, keys["a"]), world, own_dataset=own.id)
        direct = _calls(*_stubs(stack, keys["a"], stack.predict_address), world, own.id)
        calls["Predict (predictor)"] = direct["Predict"]
        for name, call in calls.items():
            if name.startswith("List"):
                continue
            if name == "Upload":
                continue  # creates the caller's own dataset: nothing of B's to reach
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND, name
        # Lists show only the caller's own.
        assert [d.id for d in a.datasets()] == [own.id]
        assert a.jobs() == []
        # The same bytes as B's dataset are A's own dataset, not B's.
        with pytest.raises(NotFound):
            a.dataset(world["dataset"])
    with Client(stack.address, api_key=keys["b"]) as b:
        assert b.job(world["running"]).state == "RUNNING"  # untouched by A's cancel
        assert {world["dataset"]} <= {d.id for d in b.datasets()}
        assert b.job(world["predict"]).state == "SUCCEEDED"  # not deleted by A


def test_keys_are_rotated_without_a_restart(stack, keys_file):
    new = mint("tenant-c", keys_file)
    with Client(stack.address, api_key=new) as c:
        assert c.jobs() == []
    lines = keys_file.read_text().splitlines()
    keys_file.write_text(
        "\n".join(line for line in lines if not line.startswith("tenant-c ")) + "\n"
    )
    with Client(stack.address, api_key=new) as c:
        with pytest.raises(Unauthenticated) as revoked:
            c.jobs()
    assert "not one this fityard knows" in revoked.value.message


def test_the_cli_sends_the_key(stack, keys):
    env = {**os.environ, "FITYARD_ADDRESS": stack.address}
    env.pop("FITYARD_API_KEY", None)
    run = [sys.executable, "-m", "fityard", "jobs"]
    refused = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "needs an API key" in refused.stderr
    allowed = subprocess.run(
        [*run[:3], "--api-key", keys["a"], "jobs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert allowed.returncode == 0, allowed.stderr


def test_a_gateway_exposed_beyond_loopback_without_keys_does_not_start(tmp_path):
    gateway = start_exposed(
        "services.gateway",
        "FITYARD_GATEWAY_LISTEN",
        "FITYARD_API_KEYS_FILE",
        FITYARD_STORAGE_DIR=str(tmp_path),
    )
    assert gateway.returncode != 0
    assert "without API keys: set FITYARD_API_KEYS_FILE" in gateway.stderr
