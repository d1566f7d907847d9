"""An in-memory stand-in for the part of nats-py's KeyValue that the unit
tier's code under test calls (get, create), so pure logic (admission, idempotent
submit, paging by keys) is tested without a nats-server. End-to-end tests use
the real bucket."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from services.common.bus import record_key

TENANT = "default"


@dataclass
class Entry:
    value: bytes
    revision: int = 1


class FakeBucket:
    """Records by key, counting reads. `gone` ids are keys whose record was
    deleted (their subject stays in the stream)."""

    def __init__(self, records=(), gone=()):
        self.values: dict[str, bytes] = {}
        for record in records:
            self.add(record)
        self.gone = list(gone)
        self.gets = 0
        self.full_reads = 0

    def add(self, record) -> None:
        self.values[record_key(TENANT, record.id)] = record.SerializeToString()

    async def get(self, key: str) -> Entry:
        self.gets += 1
        if key not in self.values:
            raise KeyNotFoundError
        return Entry(self.values[key])

    async def create(self, key: str, value: bytes) -> int:
        if key in self.values:
            raise KeyWrongLastSequenceError
        self.values[key] = value
        return 1
