"""The object-store contract, one suite run on both backends: a local
directory and S3 (moto's S3 server, as a real subprocess, standing in for
MinIO). Each test gets its own directory or bucket."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from services.common.config import StorageConfig
from services.common.storage import ObjectNotFound, ObjectStore, open_store
from services.common.storage.local import LocalStore
from tests.support.s3server import (
    PART_SIZE as PART,
)
from tests.support.s3server import (
    multipart_uploads,
    s3_client,
    storage_config_for,
)

pytestmark = pytest.mark.stack

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def moto_endpoint(s3_server):
    """The session's moto server (tests/conftest.py); tests stay apart by bucket."""
    return s3_server.endpoint


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        config = StorageConfig(backend="local", root=tmp_path / "objects")
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        config = storage_config_for(endpoint, f"t-{uuid.uuid4().hex[:12]}")
    store = open_store(config)
    store.ensure_ready()
    return store


def _in_progress(store) -> list[str]:
    """Unfinished writes: temp files (local) or multipart uploads (S3)."""
    if isinstance(store, LocalStore):
        return sorted(p.name for p in (store.root / ".tmp").iterdir())
    return multipart_uploads(store.config)


def _chunks(data: bytes, size: int = MiB):
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize(
    "size, chunk",
    [
        (0, MiB),
        (10, MiB),
        (3 * MiB + 7, MiB),
        (2 * PART + 123, 777_777),
    ],  # last: multipart, odd chunk edges
    ids=["empty", "tiny", "multi-chunk", "multipart"],
)
def test_round_trip_returns_size_and_sha256(store, size, chunk):
    data = os.urandom(size)
    info = store.write_stream("a/b/object.bin", _chunks(data, chunk))
    assert (info.key, info.size, info.sha256) == (
        "a/b/object.bin",
        size,
        hashlib.sha256(data).hexdigest(),
    )
    assert b"".join(store.read_stream("a/b/object.bin", chunk_size=MiB)) == data
    assert store.stat("a/b/object.bin").size == size
    with store.local_copy("a/b/object.bin") as path:
        assert path.read_bytes() == data


def test_write_file_stores_a_local_file(store, tmp_path):
    source = tmp_path / "train.parquet"
    source.write_bytes(os.urandom(2 * MiB + 5))
    info = store.write_file("ds/train.parquet", source)
    assert info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    with store.local_copy("ds/train.parquet") as path:
        assert path.read_bytes() == source.read_bytes()
        assert path.suffix == ".parquet"  # pandas and friends go by the extension


def test_missing_key_raises_object_not_found_before_reading(store):
    with pytest.raises(ObjectNotFound) as raised:
        store.read_stream("nope")  # not iterated: the error comes at the call
    assert raised.value.key == "nope"
    with pytest.raises(ObjectNotFound):
        store.stat("nope")
    with pytest.raises(ObjectNotFound):
        with store.local_copy("nope"):
            pass
    assert not store.exists("nope")


def test_a_key_prefix_is_not_an_object(store):
    store.write_stream("t/a/1", [b"x"])
    for key in ["t", "t/a"]:
        assert not store.exists(key)
        with pytest.raises(ObjectNotFound):
            store.read_stream(key)
        store.delete(key)  # nothing there: no error, and nothing else goes
    assert list(store.list()) == ["t/a/1"]


def test_object_is_invisible_until_the_upload_completes(store):
    seen = {}

    def chunks():
        yield from _chunks(os.urandom(2 * PART + MiB))  # S3: two parts already sent
        seen["exists"] = store.exists("k")
        seen["listed"] = list(store.list())
        seen["in_progress"] = _in_progress(store)
        yield b"tail"

    store.write_stream("k", chunks())
    assert seen["in_progress"], "the check ran before anything was written"
    assert (seen["exists"], seen["listed"]) == (False, [])
    assert store.stat("k").size == 2 * PART + MiB + 4
    assert _in_progress(store) == []


@pytest.mark.parametrize(
    "error",
    [ValueError("refused by the caller's check"), asyncio.CancelledError()],
    ids=["exception", "cancelled"],  # CancelledError is a BaseException
)
def test_failed_write_leaves_nothing_behind(store, error):
    seen = {}

    def chunks():
        yield from _chunks(os.urandom(3 * PART))  # S3: a multipart upload is under way
        seen["in_progress"] = _in_progress(store)
        raise error

    with pytest.raises(type(error)) as raised:
        store.write_stream("big", chunks())
    assert raised.value is error  # propagates unchanged
    assert seen["in_progress"], "the upload had not started when the iterator raised"
    assert not store.exists("big")
    assert list(store.list()) == []
    assert _in_progress(store) == []


def test_refused_uploads_leave_no_threads_or_memory_behind(store):
    """A gateway refuses uploads all day: each refusal must cost nothing
    afterwards (minio's parallel part uploads left their threads blocked,
    each holding its last part)."""

    def refused():
        yield from (bytes(MiB) for _ in range(3 * PART // MiB))
        raise ValueError("not a Parquet file")

    threads = threading.active_count()
    tracemalloc.start()
    try:
        for _ in range(3):
            with pytest.raises(ValueError):
                store.write_stream("refused", refused())
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert threading.active_count() == threads
    assert held < PART, f"{held / MiB:.1f} MiB still held after three refused uploads"


def test_failed_overwrite_keeps_the_old_object(store):
    store.write_stream("k", [b"old"])

    def chunks():
        yield b"new"
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        store.write_stream("k", chunks())
    assert b"".join(store.read_stream("k")) == b"old"


@pytest.mark.parametrize(
    "size, part_sizes",
    [(PART, []), (3 * PART + 1, [PART, PART, PART, 1])],
    ids=["one-part-single-put", "multipart"],
)
def test_s3_uploads_use_multipart_only_beyond_one_part(moto_endpoint, size, part_sizes):
    store = open_store(storage_config_for(moto_endpoint, f"t-{uuid.uuid4().hex[:12]}"))
    store.ensure_ready()
    store.write_stream("big", _chunks(os.urandom(size)))
    s3 = s3_client(store.config)
    etag = s3.head_object(Bucket=store.bucket, Key="big")["ETag"].strip('"')
    if not part_sizes:
        assert "-" not in etag  # a plain PUT's ETag is the MD5, no part count
        return
    assert etag.endswith(f"-{len(part_sizes)}")
    stored = [
        s3.head_object(Bucket=store.bucket, Key="big", PartNumber=n)["ContentLength"]
        for n in range(1, len(part_sizes) + 1)
    ]
    assert stored == part_sizes


def test_streaming_write_memory_stays_bounded(store):
    """Memory depends on the part size, not on the object's size."""
    total = 48 * MiB

    def chunks():
        for _ in range(total // MiB):
            yield bytes(MiB)  # a new buffer each time, as a gRPC stream gives

    tracemalloc.start()
    try:
        store.write_stream("stream", chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.stat("stream").size == total
    assert peak < 4 * PART, f"peak {peak / MiB:.1f} MiB for a {total // MiB} MiB upload"


def test_read_stream_closed_early_leaves_the_store_usable(store):
    data = os.urandom(3 * MiB)
    store.write_stream("k", [data])
    store.read_stream("k").close()  # never started
    for _ in range(3):
        partial = store.read_stream("k", chunk_size=64 * 1024)
        assert len(next(partial)) > 0
        partial.close()  # mid-body: later reads must still get whole objects
        assert list(partial) == []  # and a closed stream is simply over
    assert b"".join(store.read_stream("k")) == data


def test_list_is_sorted_and_filtered_by_prefix(store):
    for key in ["u/3", "t/b/2", "tz", "t/a/1"]:
        store.write_stream(key, [b"."])
    assert list(store.list()) == ["t/a/1", "t/b/2", "tz", "u/3"]
    assert list(store.list("t/")) == ["t/a/1", "t/b/2"]
    assert list(store.list("t")) == ["t/a/1", "t/b/2", "tz"]  # a string prefix, as on S3
    assert list(store.list("v")) == []


def test_delete_is_idempotent_and_only_removes_its_key(store):
    store.write_stream("d/1", [b"1"])
    store.write_stream("d/2", [b"2"])
    store.delete("d/1")
    store.delete("d/1")
    store.delete("never-written")
    assert list(store.list()) == ["d/2"]


def test_ensure_ready_again_keeps_stored_objects(store):
    store.write_stream("k", [b"kept"])
    store.ensure_ready()  # as on every service start
    assert b"".join(store.read_stream("k")) == b"kept"


def test_local_copy_is_a_temp_file_on_s3_and_the_stored_file_locally(store):
    store.write_stream("k/data.csv", [b"data"])
    with store.local_copy("k/data.csv") as path:
        assert path.read_bytes() == b"data"
    with pytest.raises(RuntimeError):
        with store.local_copy("k/data.csv") as failed_path:
            raise RuntimeError("the reader failed")
    if isinstance(store, LocalStore):
        assert path == failed_path == store.root / "k" / "data.csv"  # the stored file itself
        assert path.exists()
    else:
        assert not path.exists() and not path.parent.exists()
        assert not failed_path.exists()


def test_local_store_rejects_keys_escaping_its_root(tmp_path):
    store = open_store(StorageConfig(backend="local", root=tmp_path / "objects"))
    store.ensure_ready()
    for key in ["../escape", "/abs", "a/../../escape", ".tmp/x", "a//b", ""]:
        with pytest.raises(ValueError):
            store.write_stream(key, [b"x"])
        with pytest.raises(ValueError):
            store.stat(key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects"]
    assert list(store.list()) == []


def test_s3_part_size_below_minimum_is_refused():
    with pytest.raises(ValueError, match="FITYARD_S3_PART_SIZE"):
        open_store(StorageConfig(backend="s3", part_size=MiB))


def test_unknown_backend_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match="FITYARD_STORAGE='gcs'"):
        open_store(StorageConfig(backend="gcs"))


# -- abandoned writes: sweep_incomplete ------------------------------------------


def _leave_abandoned(store, key: str) -> None:
    """What a writer killed mid-write leaves: a temp part file (local) or an
    open multipart upload holding one part (S3), made here directly."""
    if isinstance(store, LocalStore):
        (store.root / ".tmp" / f"{uuid.uuid4().hex}.part").write_bytes(os.urandom(1000))
    else:
        s3 = s3_client(store.config)
        upload = s3.create_multipart_upload(Bucket=store.bucket, Key=key)
        s3.upload_part(
            Bucket=store.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * 1000,
        )


class _LiveWrite:
    """write_stream in a thread, sending in bursts the test releases: each
    burst() sends `part_chunks` MiB more (S3: enough for one more part to be
    uploaded) and returns once the store has taken it."""

    def __init__(self, store, key: str):
        self.part_chunks = PART // MiB + 1
        self.sent = 0
        self._go = threading.Semaphore(0)
        self._took = threading.Semaphore(0)
        self._done = False
        self.result = None
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(store, key), daemon=True)
        self._thread.start()

    def _chunks(self):
        while True:
            self._took.release()  # the store has consumed everything sent so far
            self._go.acquire()
            if self._done:
                return
            for _ in range(self.part_chunks):
                self.sent += MiB
                yield bytes(MiB)

    def _run(self, store, key):
        try:
            self.result = store.write_stream(key, self._chunks())
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def burst(self) -> None:
        assert self._took.acquire(timeout=30)  # the store is waiting for more
        self._go.release()
        assert self._took.acquire(timeout=30), "the store did not take the burst"
        self._took.release()

    def finish(self):
        assert self._took.acquire(timeout=30)
        self._done = True
        self._go.release()
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error
        return self.result


def test_sweep_removes_only_writes_idle_longer_than_the_age(store):
    """Stale leftovers go; a write that started long ago but is still
    sending stays and completes; complete objects are untouched."""
    store.write_stream("done/object", [b"complete"])
    _leave_abandoned(store, "stale")
    live = _LiveWrite(store, "live")
    live.burst()  # started now: older than the age by the time we sweep
    time.sleep(3.0)
    live.burst()  # ...but it has just sent more (S3: another part)
    assert store.sweep_incomplete(older_than=2.0) == 1
    left = _in_progress(store)
    assert len(left) == 1 and (isinstance(store, LocalStore) or left == ["live"])

    info = live.finish()  # the live write was not disturbed
    assert info.size == live.sent == 2 * (PART + MiB)
    assert sorted(store.list()) == ["done/object", "live"]
    assert b"".join(store.read_stream("done/object")) == b"complete"
    assert store.stat("live").size == live.sent
    assert _in_progress(store) == []
    assert store.sweep_incomplete(older_than=0) == 0  # nothing left to sweep, objects kept
    assert sorted(store.list()) == ["done/object", "live"]


_KILLED_WRITER = """
import json, sys, time
from pathlib import Path
from services.common.config import StorageConfig
from services.common.storage import open_store

config = json.loads(sys.argv[1])
store = open_store(StorageConfig(**{**config, "root": Path(config["root"])}))

def chunks():
    for _ in range(int(sys.argv[2])):
        yield bytes(1024 * 1024)
    print("sent", flush=True)  # S3: the first part is stored by now
    time.sleep(600)

store.write_stream("killed", chunks())
"""


def test_writer_killed_mid_upload_leaves_what_the_sweep_removes(store):
    config = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in dataclasses.asdict(store_config(store)).items()
    }
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, json.dumps(config), str(PART // MiB + 1)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "sent"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
    assert _in_progress(store), "the killed writer left nothing: nothing to test"
    assert not store.exists("killed") and list(store.list()) == []
    assert store.sweep_incomplete(older_than=3600) == 0  # too recent for the default-like age
    assert store.sweep_incomplete(older_than=0) == 1
    assert _in_progress(store) == []


def store_config(store) -> StorageConfig:
    if isinstance(store, LocalStore):
        return StorageConfig(backend="local", root=store.root)
    return store.config


def test_sweep_refuses_a_negative_age(store):
    for age in (-1, float("nan")):
        with pytest.raises(ValueError, match="older_than"):
            store.sweep_incomplete(older_than=age)


def test_local_copy_makes_its_temp_files_in_the_given_dir(store, tmp_path):
    store.write_stream("k/model.joblib", [b"model"])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with store.local_copy("k/model.joblib", dir=scratch) as path:
        assert path.read_bytes() == b"model"
        if not isinstance(store, LocalStore):
            assert path.parent.parent == scratch and path.parent.name.startswith("fityard-s3-")
    assert list(scratch.iterdir()) == []  # removed on exit (and never used locally)


def test_a_new_file_is_stored_when_kept_and_leaves_nothing_otherwise(store, tmp_path):
    """ObjectStore.new_file, how the worker writes models and predictions:
    the path is written by a library that wants a path, kept whole under
    its key, and a file not kept (the job failed or was stopped) leaves
    neither an object nor a temp file behind."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    data = os.urandom(MiB + 3)
    with store.new_file("jobs/job_1/1/model.joblib", dir=scratch) as new:
        new.path.write_bytes(data)
        assert not store.exists("jobs/job_1/1/model.joblib")  # nothing until kept
        new.keep()
    assert b"".join(store.read_stream("jobs/job_1/1/model.joblib")) == data
    with pytest.raises(RuntimeError), store.new_file("jobs/job_2/1/model.joblib", scratch) as new:
        new.path.write_bytes(b"half a model")
        raise RuntimeError("the fit failed")
    assert not store.exists("jobs/job_2/1/model.joblib")
    assert list(scratch.iterdir()) == []
    assert _in_progress(store) == []
    assert list(store.list("jobs/")) == ["jobs/job_1/1/model.joblib"]
