"""Transfers cannot wedge the gateway (issue 7): many at once, a cap with
RESOURCE_EXHAUSTED to retry, idle streams ended, one per-message limit.

Real stacks with small settings (FITYARD_MAX_TRANSFERS, FITYARD_TRANSFER_IDLE_SECONDS),
raw stubs where the test must control the stream message by message, the SDK
where its retries are the subject.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fityard import Client
from fityard import client as sdk
from fityard.limits import MAX_MESSAGE_BYTES
from fityard.v1 import datasets_pb2, datasets_pb2_grpc
from services.common import runtime
from services.common.config import DEFAULT_TENANT
from services.common.keys import dataset_key
from services.common.storage import open_store
from services.common.storage.local import TMP_DIR
from services.embedded import EmbeddedStack, free_port
from tests.support.s3server import MotoS3Server, multipart_uploads, s3_env, storage_config_for

pytestmark = pytest.mark.stack

CAP = 4  # FITYARD_MAX_TRANSFERS of the capped stacks
IDLE = 3  # FITYARD_TRANSFER_IDLE_SECONDS of the capped stacks
CHUNK = 1024 * 1024


# -- data and streams ----------------------------------------------------------


def parquet_bytes(rows: int, columns: int = 4, seed: int = 0) -> bytes:
    """Random doubles, uncompressed: about rows * columns * 8 bytes."""
    rng = np.random.default_rng(seed)
    table = pa.table({f"col_{i}": rng.random(rows) for i in range(columns)})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="none", use_dictionary=False)
    return sink.getvalue()


SMALL = parquet_bytes(200)


def header(name: str = "t.parquet") -> datasets_pb2.UploadRequest:
    return datasets_pb2.UploadRequest(header=datasets_pb2.UploadHeader(name=name))


def chunk(data: bytes) -> datasets_pb2.UploadRequest:
    return datasets_pb2.UploadRequest(chunk=data)


def whole(data: bytes, name: str = "t.parquet", size: int = CHUNK):
    yield header(name)
    for i in range(0, len(data), size):
        yield chunk(data[i : i + size])


class HeldUpload:
    """An upload that sends its header and the file's first bytes, then one
    more byte every 0.3 s (so it is never idle) until released, then the rest."""

    def __init__(self, stub, data: bytes = SMALL):
        self.data = data
        self.release = threading.Event()
        self.started = threading.Event()
        self.future = stub.Upload.future(self._requests(), timeout=90)

    def _requests(self):
        yield header("held.parquet")
        yield chunk(self.data[:4])
        self.started.set()
        sent = 4
        while not self.release.wait(0.3):
            if sent < len(self.data) - 16:
                yield chunk(self.data[sent : sent + 1])
                sent += 1
        yield chunk(self.data[sent:])


def refused_for_the_cap(error: grpc.RpcError) -> bool:
    """RESOURCE_EXHAUSTED from the cap: names the limit, says to retry,
    carries a RetryInfo."""
    status = rpc_status.from_call(error)
    details = (
        [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
        if status
        else []
    )
    return (
        error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        and f"FITYARD_MAX_TRANSFERS={CAP}" in error.details()
        and "retry" in error.details()
        and len(details) == 1
    )


# -- stacks and what they hold -------------------------------------------------


def gateway_pid(stack: EmbeddedStack) -> int:
    return stack.pid("gateway")


def objects_root(stack: EmbeddedStack) -> Path:
    return stack.data_dir / "objects"


def temp_files(stack: EmbeddedStack) -> list[Path]:
    """Unfinished writes of the local store (one per upload being written)."""
    tmp = objects_root(stack) / TMP_DIR
    return sorted(tmp.iterdir()) if tmp.exists() else []


def open_files(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return found


def wait_until(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def _start(data_dir: Path, env: dict[str, str], storage: str = "local") -> EmbeddedStack:
    return EmbeddedStack(data_dir, trainers=1, storage=storage, env=env).start()


class ThrottledProxy:
    """A TCP proxy to `target_port` that forwards what its clients send at
    `rate` bytes/s per connection (answers at full speed): a store slower
    than the network, for real, between the gateway and the S3 server."""

    def __init__(self, target_port: int, rate: float):
        self.port = free_port()
        self._target_port = target_port
        self._rate = rate
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _pipe(self, reader, writer, rate: float | None) -> None:
        try:
            while data := await reader.read(64 * 1024):
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer) -> None:
        store_reader, store_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        await asyncio.gather(
            self._pipe(client_reader, store_writer, self._rate),
            self._pipe(store_reader, client_writer, None),
        )

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stopped.wait()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def roomy_stack(tmp_path_factory):
    """Room for 128 transfers; idle ones ended after 30 s."""
    stack = _start(
        tmp_path_factory.mktemp("roomy"),
        {"FITYARD_MAX_TRANSFERS": "128", "FITYARD_TRANSFER_IDLE_SECONDS": "30"},
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def capped_stack(tmp_path_factory):
    """At most CAP transfers; idle ones ended after IDLE s."""
    stack = _start(
        tmp_path_factory.mktemp("capped"),
        {"FITYARD_MAX_TRANSFERS": str(CAP), "FITYARD_TRANSFER_IDLE_SECONDS": str(IDLE)},
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def capped_s3_stack(tmp_path_factory, s3_server):
    config = storage_config_for(s3_server.endpoint, f"fityard-{uuid.uuid4().hex[:8]}")
    env = {
        "FITYARD_MAX_TRANSFERS": str(CAP),
        "FITYARD_TRANSFER_IDLE_SECONDS": str(IDLE),
        **s3_env(config),
    }
    stack = _start(tmp_path_factory.mktemp("capped-s3"), env, storage="s3")
    stack.store = open_store(config)
    yield stack
    stack.stop()


def stub_for(stack: EmbeddedStack):
    channel = grpc.insecure_channel(
        stack.address,
        options=[
            ("grpc.max_send_message_length", 2 * MAX_MESSAGE_BYTES),  # to send one over the limit
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    return channel, datasets_pb2_grpc.DatasetServiceStub(channel)


@pytest.fixture
def capped(capped_stack):
    channel, stub = stub_for(capped_stack)
    yield capped_stack, stub
    channel.close()


# -- many at once ----------------------------------------------------------------


def test_a_hundred_concurrent_uploads_while_seventy_are_held_open(roomy_stack):
    """70 uploads held open by slow clients and 30 more at the same time all
    succeed. The shared 64-thread pool of before gave every upload's writer
    a pool thread for its whole duration: 64 slow clients held all of them,
    and every later upload or download waited forever."""
    channel, stub = stub_for(roomy_stack)
    # Different bytes each: the same bytes twice would be one dataset.
    held = [HeldUpload(stub, parquet_bytes(200, seed=1000 + i)) for i in range(70)]
    try:
        assert all(h.started.wait(30) for h in held)
        # Every held upload has a writer of its own at work (a temp file each).
        assert wait_until(lambda: len(temp_files(roomy_stack)) >= 70, 20), len(
            temp_files(roomy_stack)
        )
        quick = [
            stub.Upload.future(whole(parquet_bytes(100, seed=i)), timeout=30) for i in range(30)
        ]
        quick_ids = [f.result().dataset.id for f in quick]  # raises on any refusal or timeout
        with Client(roomy_stack.address) as c:
            path = c.download_dataset(quick_ids[0], roomy_stack.data_dir / "back.parquet")
        assert path.read_bytes() == parquet_bytes(100, seed=0)
    finally:
        for h in held:
            h.release.set()
    held_ids = [h.future.result(timeout=60).dataset.id for h in held]
    assert len(set(held_ids + quick_ids)) == 100
    assert wait_until(lambda: temp_files(roomy_stack) == [], 10)
    # Still answering.
    assert (
        stub.GetDataset(
            datasets_pb2.GetDatasetRequest(dataset_id=held_ids[0]), timeout=10
        ).dataset.rows
        == 200
    )
    channel.close()


SLOW_STORE_RATE = 512 * 1024  # bytes/s per connection to the store


@pytest.fixture(scope="module")
def slow_store_stack(tmp_path_factory):
    """Room for 128 transfers; an S3 store (its own moto server) behind a
    ThrottledProxy."""
    with MotoS3Server() as moto:
        proxy = ThrottledProxy(moto.port, SLOW_STORE_RATE)
        config = storage_config_for(f"127.0.0.1:{proxy.port}", f"fityard-{uuid.uuid4().hex[:8]}")
        env = {"FITYARD_MAX_TRANSFERS": "128", **s3_env(config)}
        stack = _start(tmp_path_factory.mktemp("slow-store"), env, storage="s3")
        try:
            yield stack
        finally:
            stack.stop()
            proxy.stop()


def test_uploads_to_a_store_slower_than_the_network_all_finish(slow_store_stack):
    """66 uploads at once of 5.4 MiB, to an S3 store that takes 0.5 MiB/s per
    connection: while a writer sends its first 5 MiB part, its receiver gets
    ahead and waits for room. Before, that wait took a thread of the shared
    64-thread pool, which the writers (waiting for those receivers) held
    all of: every upload hung (all 66 timed out at 60 s; a plain 10 s each
    now, side by side)."""
    channel, stub = stub_for(slow_store_stack)
    # 5.4 MiB each (one 5 MiB part, then 0.4 MiB), different bytes each:
    # the same bytes twice would be one dataset.
    files = [parquet_bytes(177_000, seed=i) for i in range(66)]
    data = files[0]
    started = time.monotonic()
    calls = [stub.Upload.future(whole(f, size=64 * 1024), timeout=60) for f in files]
    ids = [call.result().dataset.id for call in calls]  # raises on any timeout or refusal
    assert len(set(ids)) == 66
    assert time.monotonic() - started > 5 * 1024 * 1024 / SLOW_STORE_RATE  # the store was that slow
    assert stub.GetDataset(
        datasets_pb2.GetDatasetRequest(dataset_id=ids[0]), timeout=10
    ).dataset.size_bytes == len(data)
    channel.close()


# -- the cap ---------------------------------------------------------------------------


def test_a_transfer_over_the_cap_is_refused_then_the_sdk_retries(capped):
    stack, stub = capped
    stored = stub.Upload(whole(SMALL), timeout=30).dataset
    held = [HeldUpload(stub) for _ in range(CAP)]
    try:
        assert all(h.started.wait(30) for h in held)
        assert wait_until(lambda: len(temp_files(stack)) >= CAP, 20)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Upload(whole(SMALL), timeout=30)
        assert refused_for_the_cap(refused.value), refused.value.details()
        # Downloads count against the same cap.
        with pytest.raises(grpc.RpcError) as refused:
            next(
                iter(
                    stub.DownloadDataset(
                        datasets_pb2.DownloadDatasetRequest(dataset_id=stored.id), timeout=30
                    )
                )
            )
        assert refused_for_the_cap(refused.value), refused.value.details()

        # The SDK waits and retries while the gateway is full.
        results: dict[str, object] = {}

        def sdk_transfers():
            with Client(stack.address) as c:
                started = time.monotonic()
                try:
                    results["upload"] = c.upload(io_file(stack, SMALL)).rows
                    results["download"] = c.download_dataset(
                        stored.id, stack.data_dir / "again.parquet"
                    ).read_bytes()
                except Exception as exc:  # noqa: BLE001 - reported below
                    results["error"] = exc
                results["seconds"] = time.monotonic() - started

        worker = threading.Thread(target=sdk_transfers)
        worker.start()
        time.sleep(1.5)
        assert worker.is_alive()  # refused and waiting to retry, not failed
    finally:
        for h in held:
            h.release.set()
    assert all(h.future.result(timeout=30).dataset.rows == 200 for h in held)
    worker.join(60)
    assert "error" not in results, results.get("error")
    assert results["upload"] == 200 and results["download"] == SMALL
    assert results["seconds"] >= 1.4
    assert "refused upload" in stack.log_tail("gateway", 200)
    # Room again: a plain upload goes through at once.
    assert stub.Upload(whole(SMALL), timeout=30).dataset.rows == 200


def io_file(stack: EmbeddedStack, data: bytes) -> Path:
    path = stack.data_dir / f"{uuid.uuid4().hex}.parquet"
    path.write_bytes(data)
    return path


# -- idle streams ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_an_idle_upload_is_aborted_and_leaves_nothing(backend, request):
    stack = request.getfixturevalue("capped_stack" if backend == "local" else "capped_s3_stack")
    channel, stub = stub_for(stack)
    if backend == "local":
        in_progress = lambda: temp_files(stack)  # noqa: E731
        sent = SMALL[:4] + bytes(CHUNK)
    else:
        in_progress = lambda: multipart_uploads(stack.store.config)  # noqa: E731
        sent = SMALL[:4] + bytes(6 * CHUNK)  # over one 5 MiB part: a multipart upload is under way
    before = in_progress()
    objects_before = (
        list(stack.store.list())
        if backend == "s3"
        else sorted(objects_root(stack).rglob("*.parquet"))
    )
    hold = threading.Event()

    def header_then_nothing():
        yield header("idle.parquet")
        for i in range(0, len(sent), CHUNK):
            yield chunk(sent[i : i + CHUNK])
        hold.wait(60)

    def nothing_at_all():
        hold.wait(60)
        yield header("never.parquet")

    try:
        started = time.monotonic()
        idle = stub.Upload.future(header_then_nothing(), timeout=30)
        silent = stub.Upload.future(nothing_at_all(), timeout=30)
        assert wait_until(lambda: len(in_progress()) > len(before), 10)  # the store write has begun
        for call in (idle, silent):
            with pytest.raises(grpc.RpcError) as ended:
                call.result()
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert f"no data received for {IDLE} s; upload aborted" in ended.value.details()
        assert IDLE - 0.5 <= time.monotonic() - started < IDLE + 10
    finally:
        hold.set()
        channel.close()
    assert wait_until(lambda: in_progress() == before, 10), in_progress()
    objects_after = (
        list(stack.store.list())
        if backend == "s3"
        else sorted(objects_root(stack).rglob("*.parquet"))
    )
    assert objects_after == objects_before


def test_an_unread_download_is_ended_and_its_reader_closed(capped):
    stack, stub = capped
    big = parquet_bytes(
        1_000_000, columns=3
    )  # 24 MB: far more than gRPC buffers for a reader that stops
    with Client(stack.address) as c:
        dataset = c.upload(io_file(stack, big))
    stored_at = str((objects_root(stack) / dataset_key(DEFAULT_TENANT, dataset.id)).resolve())
    pid = gateway_pid(stack)

    # A connection of its own whose flow-control window stays at gRPC's
    # default (no BDP probing, which could grow it past the file's size).
    slow_reader = grpc.insecure_channel(
        stack.address,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.http2.bdp_probe", 0),
        ],
    )
    call = datasets_pb2_grpc.DatasetServiceStub(slow_reader).DownloadDataset(
        datasets_pb2.DownloadDatasetRequest(dataset_id=dataset.id), timeout=60
    )
    responses = iter(call)
    assert next(responses).dataset.id == dataset.id  # then the client stops reading
    assert stored_at in open_files(pid)  # the gateway's reader has the object open
    started = time.monotonic()
    # The gateway keeps serving others meanwhile.
    small = stub.Upload(whole(SMALL), timeout=30).dataset
    with Client(stack.address) as c:
        assert c.download_dataset(small.id, stack.data_dir / "small.parquet").read_bytes() == SMALL
    # After the idle time the download is ended and the store reader closed.
    assert wait_until(lambda: stored_at not in open_files(pid), IDLE + 10)
    assert time.monotonic() - started >= IDLE - 1.0
    received = 0
    with pytest.raises(grpc.RpcError) as ended:
        for response in responses:  # what gRPC had buffered, then the status
            received += len(response.chunk)
    call.cancel()
    slow_reader.close()
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"the client read nothing for {IDLE} s" in ended.value.details()
    assert received < len(big)
    # Its slot is free again: CAP transfers at once are admitted.
    held = [HeldUpload(stub) for _ in range(CAP)]
    try:
        assert wait_until(lambda: len(temp_files(stack)) >= CAP, 20)
    finally:
        for h in held:
            h.release.set()
    assert all(h.future.result(timeout=30).dataset.rows == 200 for h in held)


# -- one per-message limit ----------------------------------------------------------


def test_one_message_size_limit_shared_by_the_sdk_and_the_services():
    assert MAX_MESSAGE_BYTES == 16 * 1024 * 1024
    assert runtime.MAX_MESSAGE_BYTES == MAX_MESSAGE_BYTES
    options = dict(sdk._CHANNEL_OPTIONS)
    assert options["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES
    assert options["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES
    assert sdk.CHUNK_SIZE < MAX_MESSAGE_BYTES


def test_an_upload_chunk_over_the_message_limit_is_refused_and_nothing_kept(capped):
    stack, stub = capped
    objects_before = sorted(objects_root(stack).rglob("*.parquet"))
    # A complete Parquet file, then one message over the limit: gRPC drops the
    # message and cuts the stream, which must not be taken for its end.
    with pytest.raises(grpc.RpcError) as refused:
        stub.Upload(iter([header(), chunk(SMALL), chunk(bytes(MAX_MESSAGE_BYTES + 1))]), timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_MESSAGE_BYTES) in refused.value.details()
    # The gateway may have stored the file before the cut reached it: it
    # deletes it then (a loaded machine can take a moment).
    stored = lambda: sorted(objects_root(stack).rglob("*.parquet"))  # noqa: E731
    assert wait_until(lambda: stored() == objects_before, 10), set(stored()) ^ set(objects_before)
    assert wait_until(lambda: temp_files(stack) == [], 10)
    # Just under the limit is one message the gateway takes.
    near = parquet_bytes(MAX_MESSAGE_BYTES // 32 - 2048, columns=4)
    assert MAX_MESSAGE_BYTES - 256 * 1024 < len(near) < MAX_MESSAGE_BYTES - 64
    assert stub.Upload(whole(near, size=len(near)), timeout=30).dataset.size_bytes == len(near)
