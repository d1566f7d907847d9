"""The object-store contract, one suite run on both backends: the local
directory and S3 (moto's server standing in for MinIO)."""
from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid

import boto3
import pytest

from services.common.config import StorageConfig
from services.common.storage import ObjectNotFound, open_store
from tests.support.s3server import storage_config_for

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        config = StorageConfig(backend="local", root=tmp_path / "objects")
    else:
        config = storage_config_for(request.getfixturevalue("s3_server").endpoint, f"t-{uuid.uuid4().hex[:12]}")
    store = open_store(config)
    store.ensure_ready()
    store.ensure_ready()  # idempotent
    return store


def _s3(store):
    c = store.config
    return boto3.client(
        "s3",
        endpoint_url=f"http://{c.endpoint}",
        aws_access_key_id=c.access_key,
        aws_secret_access_key=c.secret_key,
        region_name=c.region,
    )


def _chunks(data: bytes, size: int = MiB):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _nothing_in_progress(store) -> bool:
    if hasattr(store, "root"):
        return list((store.root / ".tmp").iterdir()) == []
    return not _s3(store).list_multipart_uploads(Bucket=store.bucket).get("Uploads")


@pytest.mark.parametrize("size", [0, 10, 3 * MiB + 7, 2 * PART + 123])
def test_round_trip_with_size_and_hash(store, size):
    data = os.urandom(size)
    info = store.write_stream("a/b/object.bin", _chunks(data))
    assert (info.size, info.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert b"".join(store.read_stream("a/b/object.bin", chunk_size=MiB)) == data
    assert store.stat("a/b/object.bin").size == size
    with store.local_copy("a/b/object.bin") as path:
        assert path.read_bytes() == data


def test_missing_keys_raise_object_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.read_stream("nope")
    with pytest.raises(ObjectNotFound):
        store.stat("nope")
    with pytest.raises(ObjectNotFound):
        with store.local_copy("nope"):
            pass
    assert not store.exists("nope")


def test_object_is_invisible_until_complete(store):
    seen_during_write = []

    def chunks():
        yield b"x" * MiB
        seen_during_write.append((store.exists("k"), list(store.list())))
        yield b"y" * MiB

    store.write_stream("k", chunks())
    assert seen_during_write == [(False, [])]
    assert store.exists("k")


def test_failed_write_leaves_nothing_even_mid_multipart(store):
    def chunks():
        yield from _chunks(os.urandom(3 * PART))  # several parts already sent
        raise ValueError("refused by the caller")

    with pytest.raises(ValueError, match="refused by the caller"):
        store.write_stream("big", chunks())
    assert list(store.list()) == []
    assert _nothing_in_progress(store)


def test_failed_overwrite_keeps_the_old_object(store):
    store.write_stream("k", [b"old"])

    def chunks():
        yield b"new"
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        store.write_stream("k", chunks())
    assert b"".join(store.read_stream("k")) == b"old"


def test_large_s3_uploads_use_multipart_with_big_parts(s3_server):
    store = open_store(storage_config_for(s3_server.endpoint, f"t-{uuid.uuid4().hex[:12]}"))
    store.ensure_ready()
    store.write_stream("big", _chunks(os.urandom(3 * PART + 1)))
    etag = _s3(store).head_object(Bucket=store.bucket, Key="big")["ETag"].strip('"')
    assert etag.endswith("-4")  # 4 parts: three of 5 MiB and one of 1 byte


def test_streaming_write_memory_stays_bounded(store):
    """Memory depends on the part size, not on the object's size."""
    total = 96 * MiB

    def chunks():
        block = bytes(MiB)
        for _ in range(total // MiB):
            yield block

    tracemalloc.start()
    try:
        store.write_stream("stream", chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.stat("stream").size == total
    assert peak < 6 * PART, f"peak {peak / MiB:.1f} MiB for a {total // MiB} MiB upload"


def test_list_is_sorted_and_filtered_and_delete_is_idempotent(store):
    for key in ["t/b/2", "t/a/1", "u/3"]:
        store.write_stream(key, [b"."])
    assert list(store.list()) == ["t/a/1", "t/b/2", "u/3"]
    assert list(store.list("t/")) == ["t/a/1", "t/b/2"]
    store.delete("t/a/1")
    store.delete("t/a/1")
    assert list(store.list("t/")) == ["t/b/2"]


def test_s3_local_copy_is_removed_after_use(store):
    store.write_stream("k", [b"data"])
    with store.local_copy("k") as path:
        assert path.read_bytes() == b"data"
    if not hasattr(store, "root"):
        assert not path.exists()
    else:
        assert path.exists()  # the local store hands out the stored file itself


def test_local_store_rejects_keys_escaping_its_root(tmp_path):
    store = open_store(StorageConfig(backend="local", root=tmp_path / "objects"))
    for key in ["../escape", "/abs", "a/../../b", ".tmp/x", ""]:
        with pytest.raises(ValueError):
            store.write_stream(key, [b"x"])
    assert not (tmp_path / "escape").exists()


def test_s3_part_size_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least"):
        open_store(StorageConfig(backend="s3", part_size=MiB))
