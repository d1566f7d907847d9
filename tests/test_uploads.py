"""Uploads straight from a raw gRPC stub: what the gateway keeps and refuses.

A refused or abandoned upload must leave nothing in the store: no object, no
temp file, no S3 multipart upload in progress.
"""

from __future__ import annotations

import hashlib
import threading
import time

import grpc
import pytest

from fityard.v1 import datasets_pb2, datasets_pb2_grpc
from tests.support.s3server import multipart_uploads

pytestmark = pytest.mark.stack

CHUNK = 1024 * 1024


def _requests(name: str, data: bytes, **header):
    yield datasets_pb2.UploadRequest(header=datasets_pb2.UploadHeader(name=name, **header))
    for i in range(0, len(data), CHUNK):
        yield datasets_pb2.UploadRequest(chunk=data[i : i + CHUNK])


def _leftovers(stack) -> list[str]:
    """Everything the store holds that is not a complete object, plus objects."""
    left = list(stack.store.list())
    if stack.backend == "local":
        tmp = stack.store.root / ".tmp"
        left += [str(p) for p in tmp.iterdir()] if tmp.exists() else []
    else:
        left += multipart_uploads(stack.store.config)
    return left


@pytest.fixture
def stub(stack):
    with grpc.insecure_channel(stack.address) as channel:
        yield datasets_pb2_grpc.DatasetServiceStub(channel)


class StoreSnapshot:
    """What the store held before the test; `added()` is what came since."""

    def __init__(self, stack):
        self.stack = stack
        self.before = set(_leftovers(stack))

    def added_within(self, seconds: float) -> list[str]:
        """What came since, as soon as anything has (empty after `seconds`)."""
        deadline = time.monotonic() + seconds
        while not (new := self.added()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return new

    def added(self, settle: float = 0.0) -> list[str]:
        deadline = time.monotonic() + settle
        while True:
            new = sorted(set(_leftovers(self.stack)) - self.before)
            if not new or time.monotonic() >= deadline:
                return new
            time.sleep(0.2)


@pytest.fixture
def store_snapshot(stack):
    return StoreSnapshot(stack)


def test_upload_records_schema_rows_and_hash(stub, seed_files):
    data = seed_files["test"].read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    dataset = stub.Upload(_requests("test.parquet", data, size_bytes=len(data), sha256=sha)).dataset
    assert (dataset.size_bytes, dataset.sha256, dataset.rows) == (len(data), sha, 750)
    assert [c.name for c in dataset.columns] == [f"col_{i}" for i in range(50)] + ["y"]
    assert dataset.columns[0].type == "double"
    fetched = stub.GetDataset(datasets_pb2.GetDatasetRequest(dataset_id=dataset.id)).dataset
    assert fetched == dataset


def test_sha256_mismatch_is_refused_and_nothing_kept(stub, store_snapshot, seed_files):
    data = seed_files["test"].read_bytes()
    with pytest.raises(grpc.RpcError) as refused:
        stub.Upload(_requests("test.parquet", data, sha256="0" * 64))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.sha256" in refused.value.details()
    assert store_snapshot.added() == []


def test_truncated_parquet_is_refused_and_nothing_kept(stub, store_snapshot, seed_files):
    data = seed_files["train"].read_bytes()
    with pytest.raises(grpc.RpcError) as refused:
        stub.Upload(_requests("train.parquet", data[: len(data) // 2]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not Parquet" in refused.value.details()
    assert store_snapshot.added() == []


def test_missing_header_is_refused(stub):
    with pytest.raises(grpc.RpcError) as refused:
        stub.Upload(iter([datasets_pb2.UploadRequest(chunk=b"PAR1")]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header" in refused.value.details()


def test_abandoned_upload_leaves_nothing(stub, store_snapshot):
    """A client that goes away after sending 12 MiB (multipart on S3 started)."""
    sent = threading.Event()
    release = threading.Event()

    def requests():
        yield datasets_pb2.UploadRequest(header=datasets_pb2.UploadHeader(name="big.parquet"))
        yield datasets_pb2.UploadRequest(chunk=b"PAR1" + bytes(CHUNK - 4))
        for _ in range(11):
            yield datasets_pb2.UploadRequest(chunk=bytes(CHUNK))
        sent.set()
        release.wait(30)  # hold the stream open until cancelled

    call = stub.Upload.future(requests())
    assert sent.wait(30)
    # The gateway has started writing (a temp file, or a multipart upload
    # with parts on S3): the abandonment below has something to clean up.
    assert store_snapshot.added_within(15) != []
    call.cancel()
    release.set()
    assert store_snapshot.added(settle=15) == []


def test_gateway_keeps_serving_after_refusals(stub, seed_files):
    data = seed_files["test"].read_bytes()
    assert stub.Upload(_requests("again.parquet", data)).dataset.rows == 750


def test_download_dataset_returns_the_uploaded_bytes(stack, seed_files, tmp_path):
    from fityard import Client

    with Client(stack.address) as client:
        dataset = client.upload(seed_files["train"])
        path = client.download_dataset(dataset, tmp_path)
    assert path == tmp_path / "train.parquet"
    assert path.read_bytes() == seed_files["train"].read_bytes()


def test_download_of_an_unknown_dataset_is_not_found(stub):
    with pytest.raises(grpc.RpcError) as missing:
        next(
            iter(
                stub.DownloadDataset(
                    datasets_pb2.DownloadDatasetRequest(dataset_id="ds_0000000000000000")
                )
            )
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "ds_0000000000000000" in missing.value.details()
