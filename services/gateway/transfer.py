"""Moving bytes between a gRPC stream (event loop) and the store (threads),
shared by every upload and download RPC.

Rules that keep transfers from wedging the gateway, whatever the number of
clients and however slow the store:

- Admission: at most `max_transfers` (FITYARD_MAX_TRANSFERS) uploads and
  downloads at once. One more is refused at once with RESOURCE_EXHAUSTED
  and a google.rpc.RetryInfo; it never queues for a resource.
- A thread of its own per admitted transfer, for the store's blocking
  writer or reader. The event-loop side never blocks and never borrows a
  pool thread: chunks cross between the two through
  `loop.call_soon_threadsafe` and asyncio primitives. So no transfer waits
  for a thread another transfer holds (a shared pool used by both sides did
  that: with as many uploads as threads and a store slower than the
  network, receivers and writers waited on each other for good).
- Bounded read-ahead both ways, READ_AHEAD chunks: receiving the next chunk
  overlaps with writing the last one (and reading the next with sending the
  last), and memory per transfer stays bounded.
- Idle streams end: an upload whose client sends nothing, or a download
  whose client reads nothing (gRPC flow control holds our write), for
  `idle_seconds` (FITYARD_TRANSFER_IDLE_SECONDS) ends with
  DEADLINE_EXCEEDED; the store write is aborted (nothing kept) or the store
  reader closed, and the transfer's slot and thread are freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from opentelemetry import trace

from services.common import errors
from services.common.config import SCHEMA
from services.common.storage import ObjectInfo, ObjectNotFound, ObjectStore

from . import metrics

log = logging.getLogger(__name__)

READ_AHEAD = 4  # chunks (1 MiB from the store; a client's, up to fityard.limits.MAX_MESSAGE_BYTES)
RETRY_AFTER_SECONDS = 1  # the RetryInfo delay of a refused transfer
_END = object()
_WAKE = object()


class TransferAborted(Exception):
    """The other side went away mid-transfer."""


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """Run `callback` on the loop, from a store thread."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: the gateway is exiting
        pass


class _Watchdog:
    """Calls `on_idle` once when a wait (between `waiting()` and `active()`)
    lasts `seconds`.

    Marking a wait costs an assignment; there is one timer per transfer at
    most, re-armed only when it fires, so watching every chunk is free."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, seconds: float, on_idle: Callable[[], None]
    ):
        self._loop = loop
        self.seconds = seconds
        self._on_idle = on_idle
        self._since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.fired = False

    def waiting(self) -> None:
        self._since = self._loop.time()
        if self._timer is None and not self.fired:
            self._timer = self._loop.call_at(self._since + self.seconds, self._check)

    def active(self) -> None:
        self._since = None

    def _check(self) -> None:
        self._timer = None
        if self._since is None:
            return  # not waiting now; the next wait arms the timer again
        due = self._since + self.seconds
        if self._loop.time() + 0.001 < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self.fired = True
        self._on_idle()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._since = None


class _Inbound:
    """Chunks received on the event loop, handed to the store's writer thread.

    The loop side waits for room with an asyncio.Semaphore that the writer
    releases through call_soon_threadsafe; the writer blocks on a queue in
    its own thread. A failure set by the loop (`fail`) wakes the writer,
    which raises it from the store's chunk iterator, so the store aborts."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._room = asyncio.Semaphore(READ_AHEAD)
        self._failure: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        """Make the writer raise `exc` (first failure wins)."""
        if self._failure is None:
            self._failure = exc
            self._items.put(_WAKE)

    async def pump(self, chunks: AsyncIterator[bytes], watchdog: _Watchdog) -> None:
        """Receive every chunk and queue it; a task beside the writer."""
        received = metrics.TRANSFER_BYTES.labels(metrics.UPLOAD)
        try:
            while True:
                watchdog.waiting()
                chunk = await anext(chunks, _END)
                watchdog.active()
                if chunk is _END:
                    break
                received.inc(len(chunk))
                await self._room.acquire()
                self._items.put(chunk)
            self._items.put(_END)
        except Exception as exc:  # noqa: BLE001 - the writer raises it and the store aborts
            self.fail(exc)

    def blocking_chunks(
        self, inspect: Callable[[bytes], None], finish: Callable[[], None]
    ) -> Iterator[bytes]:
        """The chunks, for the writer thread; `inspect` sees each one and
        `finish` runs at the end (both may raise to refuse the upload)."""
        while True:
            item = self._items.get()
            if self._failure is not None:
                raise self._failure
            if item is _END:
                finish()
                return
            _call_soon(self._loop, self._room.release)
            inspect(item)
            yield item


class _Outbound:
    """An object read by a thread of its own, READ_AHEAD chunks ahead of the
    event loop, which iterates it (`async for`). `opened` resolves to the
    object's info (or ObjectNotFound) before the first chunk."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: ObjectStore, key: str):
        self._loop = loop
        self._store = store
        self._key = key
        self.opened: asyncio.Future = loop.create_future()
        self._ready: asyncio.Queue = asyncio.Queue()
        self._slots = threading.Semaphore(READ_AHEAD)
        self._stop = False
        threading.Thread(
            target=contextvars.copy_context().run,  # the transfer's span: the store's parent
            args=(self._read,),
            name=f"download {key}",
            daemon=True,
        ).start()

    def _settle(self, result: Any = None, exc: BaseException | None = None) -> None:  # on the loop
        if self.opened.done():
            return
        if exc is not None:
            self.opened.set_exception(exc)
        else:
            self.opened.set_result(result)

    def _read(self) -> None:
        try:
            chunks = self._store.read_stream(self._key)
        except BaseException as exc:  # noqa: BLE001 - ObjectNotFound or a store failure, for the loop
            _call_soon(self._loop, self._settle, None, exc)
            return
        try:
            _call_soon(self._loop, self._settle, self._store.stat(self._key))
            for chunk in chunks:
                self._slots.acquire()
                if self._stop:
                    return
                _call_soon(self._loop, self._ready.put_nowait, chunk)
            _call_soon(self._loop, self._ready.put_nowait, _END)
        except BaseException as exc:  # noqa: BLE001 - surface on the loop side
            _call_soon(self._loop, self._settle, None, exc)
            _call_soon(self._loop, self._ready.put_nowait, exc)
        finally:
            chunks.close()  # in this thread: the one that reads it

    def __aiter__(self) -> _Outbound:
        return self

    async def __anext__(self) -> bytes:
        item = await self._ready.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        self._slots.release()
        return item

    def close(self) -> None:
        """Stop the reader; it closes the store's stream in its thread."""
        self._stop = True
        self._slots.release()  # wakes a reader waiting for room


class Transfers:
    """Admission, threads and idle limits for one gateway's transfers."""

    def __init__(self, store: ObjectStore, *, max_transfers: int, idle_seconds: float):
        if max_transfers < 1:
            raise SystemExit(f"FITYARD_MAX_TRANSFERS={max_transfers} must be at least 1")
        if not idle_seconds > 0:
            raise SystemExit(
                f"FITYARD_TRANSFER_IDLE_SECONDS={idle_seconds:g} must be greater than 0"
            )
        self.store = store
        self.max_transfers = max_transfers
        self.idle_seconds = idle_seconds
        self.active = 0

    # -- admission -------------------------------------------------------------
    @contextlib.contextmanager
    def admit(self, what: str, direction: str) -> Iterator[None]:
        """Hold one of the `max_transfers` slots for the block, or raise
        RESOURCE_EXHAUSTED (with RetryInfo) at once. Event loop only.
        `direction`: metrics.UPLOAD or metrics.DOWNLOAD."""
        if self.active >= self.max_transfers:
            log.warning(
                "refused %s: %d transfers in progress (FITYARD_MAX_TRANSFERS)", what, self.active
            )
            metrics.TRANSFERS_REFUSED.labels(direction).inc()
            raise self._busy()
        self.active += 1
        active = metrics.TRANSFERS_ACTIVE.labels(direction)
        active.inc()
        try:
            yield
        finally:
            self.active -= 1
            active.dec()

    def _busy(self) -> errors.ApiError:
        limit = self.max_transfers
        message = (
            f"the gateway is serving its limit of {limit} concurrent uploads and downloads "
            f"(FITYARD_MAX_TRANSFERS={limit}); retry in a moment"
        )
        return errors.ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            message,
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_SECONDS)
            ),
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=SCHEMA.env("max_transfers"), description=message
                    )
                ]
            ),
        )

    def _idle_upload(self) -> errors.ApiError:
        s = self.idle_seconds
        return errors.ApiError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no data received for {s:g} s; upload aborted and nothing stored (the gateway ends an upload "
            f"that sends nothing for FITYARD_TRANSFER_IDLE_SECONDS={s:g}); upload the file again",
        )

    # -- uploads ---------------------------------------------------------------
    async def first_message(self, messages: AsyncIterator[Any]) -> Any:
        """The first message of an upload stream (None if it ended at once);
        DEADLINE_EXCEEDED if none comes within the idle time."""
        try:
            return await asyncio.wait_for(anext(messages, None), self.idle_seconds)
        except asyncio.TimeoutError:
            raise self._idle_upload() from None

    async def receive(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        inspect: Callable[[bytes], None],
        finish: Callable[[], None],
    ) -> ObjectInfo:
        """Write the stream `chunks` to the store under `key`, in a thread of
        its own; `inspect` and `finish` run there and may raise to refuse the
        upload (the store then aborts and keeps nothing). Call inside
        `admit`."""
        loop = asyncio.get_running_loop()
        inbound = _Inbound(loop)
        done: asyncio.Future = loop.create_future()

        def finished(info: ObjectInfo | None, exc: BaseException | None) -> None:  # on the loop
            if done.cancelled():
                # The RPC went away (client cancelled, or gRPC cut the stream)
                # while the writer completed anyway: keep nothing.
                if info is not None:
                    self.discard(key)
                return
            if exc is not None:
                done.set_exception(exc)
            else:
                done.set_result(info)

        def write() -> None:
            try:
                info = self.store.write_stream(key, inbound.blocking_chunks(inspect, finish))
            except BaseException as exc:  # noqa: BLE001 - for the loop side
                _call_soon(loop, finished, None, exc)
            else:
                _call_soon(loop, finished, info, None)

        def idle() -> None:
            log.info("upload %s: no data for %gs, aborting", key, self.idle_seconds)
            inbound.fail(self._idle_upload())
            receiving.cancel()

        watchdog = _Watchdog(loop, self.idle_seconds, idle)
        receiving = loop.create_task(inbound.pump(chunks, watchdog))
        threading.Thread(
            target=contextvars.copy_context().run,  # the transfer's span: the store's parent
            args=(write,),
            name=f"upload {key}",
            daemon=True,
        ).start()
        try:
            info = await done
        except asyncio.CancelledError:
            # Cancelled just as the writer finished: the await raises though
            # `done` holds the stored file, which then must not stay.
            if done.done() and not done.cancelled() and done.exception() is None:
                self.discard(key)
            raise
        else:
            trace.get_current_span().set_attribute("fityard.transfer.bytes", info.size)
            return info
        finally:
            watchdog.close()
            receiving.cancel()
            inbound.fail(
                TransferAborted("the upload stream ended")
            )  # no-op once the writer is done

    def discard(self, key: str) -> None:
        """Delete `key` in a thread of its own, without waiting (callable
        while the RPC is being cancelled)."""
        threading.Thread(
            target=self.store.delete, args=(key,), name=f"discard {key}", daemon=True
        ).start()

    # -- downloads -------------------------------------------------------------
    async def send(
        self,
        context: grpc.aio.ServicerContext,
        key: str,
        what: str,
        head: Callable[[ObjectInfo], Message],
        wrap: Callable[[bytes], Message],
    ) -> None:
        """Stream the object `key` to the caller: `head(info)` first, then
        `wrap(chunk)` for each chunk, with context.write. A missing object
        means the store lost something a record points to: DATA_LOSS."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        sent = metrics.TRANSFER_BYTES.labels(metrics.DOWNLOAD)
        span = trace.get_current_span()  # the download's (tracing.traced_transfer)
        total = 0
        with self.admit(f"download of {what}", metrics.DOWNLOAD):
            reader = _Outbound(loop, self.store, key)
            watchdog = _Watchdog(loop, self.idle_seconds, task.cancel)
            try:
                try:
                    info = await reader.opened
                except ObjectNotFound:
                    raise errors.ApiError(
                        grpc.StatusCode.DATA_LOSS, f"{what} is missing from the store"
                    ) from None
                await _write(context, head(info), watchdog)
                async for chunk in reader:
                    await _write(context, wrap(chunk), watchdog)
                    sent.inc(len(chunk))
                    total += len(chunk)
            except asyncio.CancelledError:
                if not watchdog.fired:
                    raise  # the client cancelled
                uncancel = getattr(task, "uncancel", None)  # Python 3.11+
                if uncancel is not None:
                    uncancel()
                s = self.idle_seconds
                log.info("download of %s: the client read nothing for %gs, ending it", what, s)
                # The status reaches the client after what gRPC has buffered,
                # when (if) it reads again; nothing here waits for that.
                raise errors.ApiError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the client read nothing for {s:g} s; download of {what} ended (the gateway ends a "
                    f"download that is not read for FITYARD_TRANSFER_IDLE_SECONDS={s:g}); download it again",
                ) from None
            finally:
                span.set_attribute("fityard.transfer.bytes", total)
                watchdog.close()
                reader.close()


async def _write(context: grpc.aio.ServicerContext, message: Message, watchdog: _Watchdog) -> None:
    watchdog.waiting()
    await context.write(message)
    watchdog.active()
