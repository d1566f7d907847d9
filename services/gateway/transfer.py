"""Streaming a stored object out over gRPC, shared by every download RPC."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import grpc

from services.common import errors
from services.common.storage import ObjectInfo, ObjectNotFound, ObjectStore


async def open_object(store: ObjectStore, key: str, what: str) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
    """The object's size and an async iterator over its chunks, read in a
    worker thread so the event loop keeps serving other calls. A missing
    object means the store lost something a record points to: DATA_LOSS."""
    try:
        chunks = await asyncio.to_thread(store.read_stream, key)
        info = await asyncio.to_thread(store.stat, key)
    except ObjectNotFound:
        raise errors.ApiError(grpc.StatusCode.DATA_LOSS, f"{what} is missing from the store") from None

    async def stream() -> AsyncIterator[bytes]:
        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                yield chunk
        finally:
            await asyncio.to_thread(chunks.close)

    return info, stream()
