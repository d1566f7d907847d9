"""Each content is stored once: a second upload of the same bytes returns the
first dataset, and the SDK, offering the digest first, sends no bytes at
all (counted by the gateway's own metrics); the store holds one copy."""

from __future__ import annotations

import threading

import grpc
import pandas as pd
import pytest

from fityard import Client
from fityard.v1 import datasets_pb2, datasets_pb2_grpc
from services.embedded import EmbeddedStack
from tests.test_metrics import moved, rpc, scrape

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(tmp_path_factory.mktemp("dedup"), trainers=1, metrics=True) as running:
        yield running


def _stored_datasets(stack) -> list:
    return sorted((stack.data_dir / "objects").rglob("datasets/*.parquet"))


def _frame(seed: int) -> pd.DataFrame:
    return pd.DataFrame({"col_0": [float(seed), 1.0, 2.0], "y": [0, 1, 0]})


def test_a_second_upload_of_the_same_file_sends_nothing_and_returns_the_same_dataset(
    stack, seed_files
):
    gateway = stack.metrics_url("gateway")
    with Client(stack.address) as client:
        first = client.upload(seed_files["train"])
        before = scrape(gateway)
        again = client.upload(seed_files["train"], name="copy.parquet")
        after = scrape(gateway)
    assert again.id == first.id and again.name == first.name  # the dataset holding the bytes
    upload = rpc("Upload", service="fityard.v1.DatasetService")
    assert moved(before, after, "grpc_server_handled_total", **upload) == 0
    assert moved(before, after, "fityard_transfer_bytes_total", direction="upload") == 0
    assert len([p for p in _stored_datasets(stack) if first.id in p.name]) == 1


def test_bytes_sent_again_are_still_stored_once(stack, seed_files):
    """dedup=False (or a client that does not ask first): the bytes travel,
    the server finds it has them and keeps one copy."""
    gateway = stack.metrics_url("gateway")
    with Client(stack.address) as client:
        first = client.upload(seed_files["test"])
        stored = _stored_datasets(stack)
        before = scrape(gateway)
        again = client.upload(seed_files["test"], dedup=False)
        after = scrape(gateway)
        assert again.id == first.id
        assert [d.id for d in client.datasets() if d.sha256 == first.sha256] == [first.id]
    size = seed_files["test"].stat().st_size
    assert moved(before, after, "fityard_transfer_bytes_total", direction="upload") == size
    assert _stored_datasets(stack) == stored


def test_the_same_new_bytes_uploaded_at_once_make_one_dataset(stack, tmp_path):
    path = tmp_path / "race.parquet"
    _frame(7).to_parquet(path, index=False)
    ids: list[str] = []

    def upload() -> None:
        with Client(stack.address) as client:
            ids.append(client.upload(path, dedup=False).id)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    with Client(stack.address) as client:
        assert [d.id for d in client.datasets(name="race.parquet")] == ids[:1]
    assert len([p for p in _stored_datasets(stack) if ids[0] in p.name]) == 1


def test_different_bytes_are_different_datasets(stack, tmp_path):
    with Client(stack.address) as client:
        one = client.upload(_frame(1), name="same-name.parquet")
        two = client.upload(_frame(2), name="same-name.parquet")
    assert one.id != two.id and one.sha256 != two.sha256


def test_list_datasets_by_sha256_and_a_malformed_digest(stack, seed_files):
    with Client(stack.address) as client:
        dataset = client.upload(seed_files["train"])
    with grpc.insecure_channel(stack.address) as channel:
        stub = datasets_pb2_grpc.DatasetServiceStub(channel)
        found = stub.ListDatasets(
            datasets_pb2.ListDatasetsRequest(filter=f"sha256={dataset.sha256.upper()}")
        )
        assert [d.id for d in found.datasets] == [dataset.id]
        none = stub.ListDatasets(datasets_pb2.ListDatasetsRequest(filter="sha256=" + "0" * 64))
        assert list(none.datasets) == []
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListDatasets(datasets_pb2.ListDatasetsRequest(filter="sha256=abc"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "64 hexadecimal digits" in refused.value.details()
