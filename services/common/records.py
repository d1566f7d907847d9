"""Job and dataset records as stored in the NATS KV buckets.

A record is an internal message (services.internal.v1 JobRecord /
DatasetRecord, protos/services/internal/v1/records.proto), not the public
API's Job / Dataset: it holds what the system needs (tenant, lane, trainer,
cores, the attempt whose outputs count), and the gateway derives what a user
sees from it (services/gateway/resources.py). Stored in protobuf's binary
encoding: records are read and written on every job's critical path, and
protobuf's JSON codec (pure Python) was the largest CPU cost there in
profiles. Operators read records through the API (`fityard status`,
grpcurl), not raw KV values. One codec, used by every service.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from .bus import record_key

M = TypeVar("M", bound=Message)


def new_id(prefix: str) -> str:
    """Short random ids ("job_5b0c9e7d1a2f3e4d"): valid in KV keys, subjects
    and object keys, and easy to paste."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def now() -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.now(timezone.utc))
    return ts


def encode(message: Message) -> bytes:
    return message.SerializeToString()


def decode(data: bytes, cls: type[M]) -> M:
    return cls.FromString(data)


async def get_record(
    kv: KeyValue, tenant: str, record_id: str, cls: type[M]
) -> tuple[M, int] | None:
    """The record and its KV revision, or None if there is no such record."""
    try:
        entry = await kv.get(record_key(tenant, record_id))
    except KeyNotFoundError:
        return None
    if entry.value is None:
        return None
    return decode(entry.value, cls), entry.revision


async def list_records(kv: KeyValue, tenant: str, cls: type[M]) -> list[M]:
    """Every record of a tenant, read with one ordered consumer (not one
    request per key).

    How many there are comes from the bucket's stream first (one request):
    nats-py's watcher can signal "no more current values" before it has
    delivered them (the consumer's pending count read before it is known),
    which made lists come back empty under load. The watch is read until it
    has delivered at least that many records."""
    expected = await _record_count(kv, tenant)
    watcher = await kv.watch(f"{tenant}.*", ignore_deletes=True)
    records: dict[str, M] = {}
    seen: set[str] = set()
    caught_up = False
    try:
        while not (caught_up and len(seen) >= expected):
            entry = await watcher.updates(timeout=10.0)
            if entry is None:  # nats-py's end of the current values
                caught_up = True
                continue
            seen.add(entry.key)
            if entry.value:
                records[entry.key] = decode(entry.value, cls)
    finally:
        await watcher.stop()
    return list(records.values())


async def _record_count(kv: KeyValue, tenant: str) -> int:
    """Keys of the tenant in the bucket, from its stream's subject counts
    (nats-py's KeyValue keeps its JetStream context and stream name)."""
    info = await kv._js.stream_info(kv._stream, subjects_filter=f"{kv._pre}{tenant}.*")  # noqa: SLF001
    return len(info.state.subjects or {})


async def watch_record(kv: KeyValue, tenant: str, record_id: str, cls: type[M]) -> AsyncIterator[M]:
    """Yield the record now and after every change, as the KV bucket pushes
    them (no polling). The caller stops iterating when it has seen enough."""
    watcher = await kv.watch(record_key(tenant, record_id), ignore_deletes=True)
    try:
        async for entry in watcher:
            if entry is None or not entry.value:
                continue
            yield decode(entry.value, cls)
    finally:
        await asyncio.shield(watcher.stop())
