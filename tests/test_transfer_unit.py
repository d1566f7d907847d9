"""Transfer plumbing (services/gateway/transfer.py) driven without a server:
a local-directory store in a temp dir, async streams and a stand-in for
grpc's servicer context. The cap (RESOURCE_EXHAUSTED with a retry delay),
idle streams ended, bounded read-ahead, and nothing kept of a refused or
abandoned upload.

The same rules through a stack, with real clients by the hundred:
tests/test_transfers.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from prometheus_client import REGISTRY

from fityard import ResourceExhausted
from services.common import errors
from services.common.storage import ObjectInfo
from services.common.storage.local import TMP_DIR, LocalStore
from services.gateway.transfer import READ_AHEAD, RETRY_AFTER_SECONDS, Transfers
from tests.support.rpc import seen_by_client

IDLE = 0.3  # seconds: FITYARD_TRANSFER_IDLE_SECONDS of these tests
MiB = 1024 * 1024


@pytest.fixture
def store(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "objects")
    store.ensure_ready()
    return store


def transfers(store, cap: int = 4, idle: float = IDLE) -> Transfers:
    return Transfers(store, max_transfers=cap, idle_seconds=idle)


def left_in(store: LocalStore) -> list[str]:
    """Objects and half-written files in the store."""
    return sorted(store.list("")) + sorted(os.listdir(store.root / TMP_DIR))


async def stream(*chunks: bytes, gap: float = 0.0, then_hang: bool = False):
    """An upload's chunks as the servicer receives them."""
    for chunk in chunks:
        if gap:
            await asyncio.sleep(gap)
        yield chunk
    if then_hang:  # the client stays connected and sends nothing more
        await asyncio.Event().wait()


def upload(t: Transfers, key: str, chunks, inspect=lambda chunk: None, finish=lambda: None):
    """Run one upload to the end, inside an admission slot."""

    async def run():
        with t.admit(f"upload of {key}", "upload"):
            return await t.receive(key, chunks, inspect, finish)

    return asyncio.run(run())


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cap, idle, says",
    [
        (0, 60.0, "FITYARD_MAX_TRANSFERS=0 must be at least 1"),
        (4, 0.0, "FITYARD_TRANSFER_IDLE_SECONDS=0 must be greater than 0"),
        (4, -1.0, "FITYARD_TRANSFER_IDLE_SECONDS=-1 must be greater than 0"),
    ],
)
def test_limits_that_would_refuse_everything_stop_the_gateway_naming_the_setting(
    store, cap, idle, says
):
    with pytest.raises(SystemExit) as raised:
        transfers(store, cap, idle)
    assert str(raised.value) == says


# -- the cap ---------------------------------------------------------------------------


def _sample(name: str, direction: str) -> float:
    return REGISTRY.get_sample_value(name, {"direction": direction})


def test_one_transfer_over_the_cap_is_refused_at_once_and_the_client_told_when_to_retry(store):
    t = transfers(store, cap=2)
    refused_before = _sample("fityard_transfers_refused_total", "upload")
    with contextlib.ExitStack() as held:
        held.enter_context(t.admit("upload 1", "upload"))
        held.enter_context(t.admit("download 2", "download"))
        started = time.monotonic()
        with pytest.raises(errors.ApiError) as raised:
            held.enter_context(t.admit("upload 3", "upload"))
        assert time.monotonic() - started < 0.1  # refused, never queued
        # what /metrics says meanwhile
        assert _sample("fityard_transfers_active", "upload") == 1
        assert _sample("fityard_transfers_active", "download") == 1
    assert _sample("fityard_transfers_refused_total", "upload") == refused_before + 1
    assert _sample("fityard_transfers_active", "upload") == 0
    error = raised.value
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "its limit of 2 concurrent uploads and downloads" in error.message
    assert "FITYARD_MAX_TRANSFERS=2" in error.message and "retry" in error.message
    (quota,) = [d for d in error.details if isinstance(d, error_details_pb2.QuotaFailure)]
    assert quota.violations[0].subject == "FITYARD_MAX_TRANSFERS"

    client_error = seen_by_client(error)
    assert isinstance(client_error, ResourceExhausted)
    assert client_error.retry_delay == RETRY_AFTER_SECONDS


def test_a_slot_is_given_back_when_a_transfer_ends_even_by_failing(store):
    t = transfers(store, cap=1)
    with pytest.raises(RuntimeError), t.admit("upload 1", "upload"):
        raise RuntimeError("the store broke")
    with t.admit("upload 2", "upload"):
        assert t.active == 1
    assert t.active == 0


# -- uploads ---------------------------------------------------------------------------


def test_an_upload_is_stored_whole_and_every_chunk_inspected_in_order(store):
    chunks = [bytes([n]) * (1000 + n) for n in range(20)]
    seen, finished = [], []
    info = upload(
        transfers(store),
        "t/a.bin",
        stream(*chunks),
        inspect=seen.append,
        finish=lambda: finished.append(True),
    )
    assert (info.key, info.size) == ("t/a.bin", sum(map(len, chunks)))
    assert b"".join(store.read_stream("t/a.bin")) == b"".join(chunks)
    assert seen == chunks and finished == [True]


@pytest.mark.parametrize("when", ["inspect", "finish"])
def test_a_refused_upload_is_refused_to_the_client_and_nothing_is_kept(store, when):
    refusal = errors.invalid_argument("chunk", "the uploaded file is not Parquet")

    def refuse(*_):
        raise refusal

    hooks = {"inspect": refuse} if when == "inspect" else {"finish": refuse}
    with pytest.raises(errors.ApiError) as raised:
        upload(transfers(store), "t/bad.bin", stream(b"a" * 100, b"b" * 100), **hooks)
    assert raised.value is refusal
    assert left_in(store) == []


def test_a_client_that_sends_nothing_more_is_cut_off_and_nothing_is_kept(store):
    t = transfers(store, idle=IDLE)
    started = time.monotonic()
    with pytest.raises(errors.ApiError) as raised:
        upload(t, "t/idle.bin", stream(b"x" * 1000, then_hang=True))
    waited = time.monotonic() - started
    error = raised.value
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"no data received for {IDLE:g} s; upload aborted and nothing stored" in error.message
    assert f"FITYARD_TRANSFER_IDLE_SECONDS={IDLE:g}" in error.message
    assert IDLE <= waited < IDLE + 2
    assert left_in(store) == [] and t.active == 0


def test_a_slow_upload_that_keeps_sending_is_not_cut_off(store):
    chunks = [b"s" * 100] * 8
    info = upload(transfers(store, idle=IDLE), "t/slow.bin", stream(*chunks, gap=IDLE / 6))
    assert info.size == 800  # it took longer than IDLE in all, never IDLE between chunks


def test_the_first_message_must_come_within_the_idle_time(store):
    t = transfers(store, idle=IDLE)
    assert asyncio.run(t.first_message(stream(b"header", b"chunk"))) == b"header"
    assert asyncio.run(t.first_message(stream())) is None
    with pytest.raises(errors.ApiError) as raised:
        asyncio.run(t.first_message(stream(then_hang=True)))
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


class HeldStore:
    """A store that writes nothing until `go` is set, then writes into `got`."""

    def __init__(self):
        self.go = threading.Event()
        self.got: list[bytes] = []

    def write_stream(self, key, chunks):
        self.go.wait(10)
        self.got.extend(chunks)
        return ObjectInfo(key=key, size=sum(map(len, self.got)))


def test_a_store_slower_than_the_client_holds_only_a_few_chunks_in_memory():
    held = HeldStore()
    received = []

    async def client():
        for n in range(50):
            received.append(n)
            yield bytes([n])

    async def run():
        t = transfers(held, idle=10)
        with t.admit("upload", "upload"):
            uploading = asyncio.ensure_future(
                t.receive("k", client(), lambda c: None, lambda: None)
            )
            await asyncio.sleep(0.2)
            ahead = len(received)
            held.go.set()
            await uploading
        return ahead

    ahead = asyncio.run(run())
    assert ahead <= READ_AHEAD + 1  # the one being received waits for room
    assert held.got == [bytes([n]) for n in range(50)]


# -- downloads -------------------------------------------------------------------------


class Context:
    """grpc.aio.ServicerContext's write, as a client reads: at once, or
    after `reads` messages never again."""

    def __init__(self, reads: int | None = None):
        self.written: list = []
        self.reads = reads

    async def write(self, message) -> None:
        if self.reads is not None and len(self.written) >= self.reads:
            await asyncio.Event().wait()
        self.written.append(message)


def download(t: Transfers, context: Context, key: str, what: str = "dataset 'ds_1'"):
    return asyncio.run(
        t.send(context, key, what, head=lambda info: ("head", info.size), wrap=lambda c: c)
    )


def test_a_download_sends_a_head_then_the_bytes_in_order(store):
    data = os.urandom(3 * MiB + 5)
    store.write_stream("t/d.bin", [data])
    context = Context()
    t = transfers(store)
    download(t, context, "t/d.bin")
    head, *chunks = context.written
    assert head == ("head", len(data))
    assert len(chunks) > 1 and b"".join(chunks) == data
    assert t.active == 0


def test_an_object_missing_from_the_store_is_data_loss_naming_what(store):
    with pytest.raises(errors.ApiError) as raised:
        download(transfers(store), Context(), "t/gone.bin", what="the model of job 'job_1'")
    assert raised.value.code == grpc.StatusCode.DATA_LOSS
    assert raised.value.message == "the model of job 'job_1' is missing from the store"


def test_a_download_nobody_reads_is_ended_and_its_slot_freed(store):
    store.write_stream("t/big.bin", [b"z" * (3 * MiB)])
    t = transfers(store, cap=1, idle=IDLE)
    started = time.monotonic()
    with pytest.raises(errors.ApiError) as raised:
        download(t, Context(reads=1), "t/big.bin")
    assert IDLE <= time.monotonic() - started < IDLE + 2
    error = raised.value
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"the client read nothing for {IDLE:g} s; download of dataset 'ds_1' ended" in (
        error.message
    )
    assert t.active == 0


def test_a_download_holds_a_slot_while_it_runs(store):
    store.write_stream("t/d.bin", [b"d" * (2 * MiB)])
    t = transfers(store, cap=1, idle=10)

    async def run():
        context = Context(reads=1)
        sending = asyncio.ensure_future(
            t.send(context, "t/d.bin", "d", head=lambda i: i, wrap=lambda c: c)
        )
        while not context.written:
            await asyncio.sleep(0.01)
        with pytest.raises(errors.ApiError) as raised:
            with t.admit("an upload", "upload"):
                pass
        sending.cancel()  # the client goes away
        with pytest.raises(asyncio.CancelledError):
            await sending
        return raised.value

    assert asyncio.run(run()).code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert t.active == 0
