"""Datasets by content: each tenant's bytes are stored once.

The index is the fityard_digests KV bucket, `<tenant>.<sha256>` -> dataset
id. An upload whose bytes hash to a digest the tenant already has returns
that dataset (its object written for nothing is deleted); the SDK asks first
(ListDatasets with `sha256=<hex>`, answered from here) and then sends no
bytes at all.

Two uploads of the same new bytes at once both store them; both try to
create the index entry, one wins, and the other deletes its own record and
object and returns the winner's dataset. A deleted dataset's entry goes with
it (`forget`), so the next upload of those bytes stores them again.
"""

from __future__ import annotations

import re

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common import errors
from services.common.records import get_record
from services.internal.v1 import records_pb2

SHA256 = re.compile(r"[0-9a-f]{64}")


def digest_key(tenant: str, sha256: str) -> str:
    return f"{tenant}.{sha256}"


def check_sha256(field: str, value: str) -> str:
    """The hex digest in lower case; INVALID_ARGUMENT naming `field` else."""
    digest = value.strip().lower()
    if not SHA256.fullmatch(digest):
        raise errors.invalid_argument(
            field, f"{value!r} is not a SHA-256: write it as 64 hexadecimal digits"
        )
    return digest


class DigestIndex:
    def __init__(self, digests: KeyValue, datasets: KeyValue):
        self.digests = digests
        self.datasets = datasets

    async def find(self, tenant: str, sha256: str) -> records_pb2.DatasetRecord | None:
        """The tenant's dataset with these bytes, if there is one."""
        try:
            entry = await self.digests.get(digest_key(tenant, sha256))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        found = await get_record(
            self.datasets, tenant, entry.value.decode(), records_pb2.DatasetRecord
        )
        return None if found is None else found[0]

    async def claim(self, tenant: str, sha256: str, dataset_id: str) -> str | None:
        """Make `dataset_id` the tenant's dataset for these bytes; None if it
        now is, else the id of the dataset that already was."""
        key = digest_key(tenant, sha256)
        try:
            await self.digests.create(key, dataset_id.encode())
            return None
        except KeyWrongLastSequenceError:
            entry = await self.digests.get(key)
            winner = entry.value.decode()
            if await get_record(self.datasets, tenant, winner, records_pb2.DatasetRecord):
                return None if winner == dataset_id else winner
            # The entry names a dataset that is gone (deleted while its
            # entry was being removed): this one takes its place.
            await self.digests.update(key, dataset_id.encode(), last=entry.revision)
            return None

    async def forget(self, tenant: str, sha256: str, dataset_id: str) -> None:
        """Remove the entry if it names `dataset_id` (a deleted dataset)."""
        key = digest_key(tenant, sha256)
        try:
            entry = await self.digests.get(key)
        except KeyNotFoundError:
            return
        if entry.value and entry.value.decode() == dataset_id:
            await self.digests.delete(key, last=entry.revision)
