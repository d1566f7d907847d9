"""Moving bytes between a gRPC stream (event loop) and the store (threads),
shared by every upload and download RPC.

Both directions keep a bounded read-ahead queue between the two sides, so
receiving the next chunk overlaps with writing the last one (and reading the
next overlaps with sending the last): profiling showed the store's writer
thread idle half the time when chunks were handed over one at a time.
Memory per transfer stays bounded by READ_AHEAD chunks.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from typing import AsyncIterator, Callable, Iterator

import grpc

from services.common import errors
from services.common.storage import ObjectInfo, ObjectNotFound, ObjectStore

READ_AHEAD = 4  # chunks (1 MiB from the store, up to 4 MiB from a client)
_END = object()


class TransferAborted(Exception):
    """The other side went away mid-transfer."""


class Inbound:
    """Chunks arriving on the event loop, handed to a blocking consumer (the
    store's writer thread) through a bounded queue."""

    def __init__(self, chunks: AsyncIterator[bytes]):
        self._chunks = chunks
        self._queue: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        self._aborted = threading.Event()

    def abort(self) -> None:
        """Make the consumer raise TransferAborted (the store then aborts)."""
        self._aborted.set()

    async def pump(self) -> None:
        """Receive every chunk and queue it; run as a task beside the writer."""
        try:
            async for chunk in self._chunks:
                await self._put(chunk)
            await self._put(_END)
        except Exception as exc:  # noqa: BLE001 - hand the failure to the writer
            await self._put(exc)

    async def _put(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # the writer is behind: wait without blocking the loop
            while not self._aborted.is_set():
                try:
                    await asyncio.to_thread(self._queue.put, item, True, 0.5)
                    return
                except queue.Full:
                    continue

    def blocking_chunks(self, inspect: Callable[[bytes], None], finish: Callable[[], None]) -> Iterator[bytes]:
        """The chunks, for the writer thread; `inspect` sees each one and
        `finish` runs at the end (both may raise to refuse the upload)."""
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.5)
                except queue.Empty:
                    if self._aborted.is_set():
                        raise TransferAborted() from None
                    continue
                if item is _END:
                    finish()
                    return
                if isinstance(item, BaseException):
                    raise item
                inspect(item)
                yield item
        finally:
            self._aborted.set()  # stops a pump waiting on a full queue


async def open_object(store: ObjectStore, key: str, what: str) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
    """The object's size and an async iterator over its chunks, read ahead in
    a worker thread. A missing object means the store lost something a record
    points to: DATA_LOSS."""
    try:
        chunks = await asyncio.to_thread(store.read_stream, key)
        info = await asyncio.to_thread(store.stat, key)
    except ObjectNotFound:
        raise errors.ApiError(grpc.StatusCode.DATA_LOSS, f"{what} is missing from the store") from None
    return info, _read_ahead(chunks)


async def _read_ahead(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue = asyncio.Queue()
    slots = threading.Semaphore(READ_AHEAD)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not slots.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(ready.put_nowait, chunk)
            loop.call_soon_threadsafe(ready.put_nowait, _END)
        except Exception as exc:  # noqa: BLE001 - surface on the loop side
            loop.call_soon_threadsafe(ready.put_nowait, exc)
        finally:
            chunks.close()

    reader = loop.run_in_executor(None, read)
    try:
        while (item := await ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            slots.release()
            yield item
    finally:
        stop.set()  # the reader notices within 0.5 s and closes the stream
        del reader
