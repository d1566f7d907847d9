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

import json
import logging
import secrets
import time
from datetime import datetime, timezone
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from .bus import record_key

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)


# A record id is its prefix, "_", then 20 hex digits: 13 of its creation
# time in microseconds since 1970 and 7 random ones. So ids sort as their
# records were created (to the microsecond; at random within one), and the
# order of a bucket's keys is the order of its records' (create_time, id):
# a page of a list needs only the keys and that page's records
# (services/gateway/listing.py).
_TIME_DIGITS = 13
_RANDOM_DIGITS = 7


def new_record_id(prefix: str) -> tuple[str, Timestamp]:
    """A new record's id and its create_time, from one clock reading, e.g.
    ("job_660f9693f935c20d9b60", 2026-11-23T22:49:49.161308Z). Valid in KV
    keys, subjects and object keys, and easy to paste."""
    micros = time.time_ns() // 1000
    suffix = secrets.randbits(4 * _RANDOM_DIGITS)
    return f"{prefix}_{micros:0{_TIME_DIGITS}x}{suffix:0{_RANDOM_DIGITS}x}", _timestamp(micros)


def id_time(record_id: str) -> Timestamp | None:
    """The create_time a `new_record_id` id carries; None for an id of
    another shape (records from before ids were time-ordered)."""
    _, sep, digits = record_id.partition("_")
    if not sep or len(digits) != _TIME_DIGITS + _RANDOM_DIGITS:
        return None
    try:
        return _timestamp(int(digits[:_TIME_DIGITS], 16))
    except ValueError:
        return None


def _timestamp(micros: int) -> Timestamp:
    seconds, micros = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


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
    has delivered at least that many records. A deleted record's key is
    among them (its delete marker is its last message): the watch delivers
    the markers too, so they are counted, and skipped."""
    expected = await _record_count(kv, tenant)
    watcher = await kv.watch(f"{tenant}.*", ignore_deletes=False)
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
                try:
                    records[entry.key] = decode(entry.value, cls)
                except DecodeError:  # one damaged record must not hide the others
                    log.error("record %s is not a %s: left out", entry.key, cls.__name__)
    finally:
        await watcher.stop()
    return list(records.values())


async def _record_count(kv: KeyValue, tenant: str) -> int:
    return len(await record_ids(kv, tenant))


async def record_ids(kv: KeyValue, tenant: str) -> list[str]:
    """Ids of the tenant's records, in no order, without their values: the
    subjects of the bucket's stream (one request per 100,000; a deleted
    record's id may still be among them). nats-py's KeyValue keeps its
    JetStream context, stream name and subject prefix; its stream_info
    reads only the first 100,000 subjects, so the pages are requested here."""
    js, prefix = kv._js, f"{kv._pre}{tenant}."  # noqa: SLF001
    subject = f"{js._prefix}.STREAM.INFO.{kv._stream}"  # noqa: SLF001
    ids: list[str] = []
    while True:
        request = {"subjects_filter": f"{prefix}*", "offset": len(ids)}
        response = await js._api_request(subject, json.dumps(request).encode(), timeout=js._timeout)  # noqa: SLF001
        subjects = (response.get("state") or {}).get("subjects") or {}
        ids += [s[len(prefix) :] for s in subjects]
        if not subjects or len(ids) >= response.get("total", 0):
            return ids
