"""Checking an upload is Parquet while it streams, without holding it in memory.

A Parquet file starts with the magic bytes PAR1 and ends with
<footer: thrift FileMetaData><4-byte little-endian footer length>PAR1.
The checker sees the chunks on their way to the store, rejects a wrong
magic at once (the upload stops there), keeps only a bounded tail of the
stream, and at the end parses the footer from that tail with pyarrow to read
the schema and the row count. Any failure raises ApiError(INVALID_ARGUMENT)
from inside the store's chunk iterator, so the store aborts the write and
nothing is kept.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque

import pyarrow as pa
import pyarrow.parquet as pq

from fityard.v1 import datasets_pb2
from services.common import errors

MAGIC = b"PAR1"
# Footers larger than this are refused (they mean thousands of columns times
# hundreds of row groups); the limit bounds the gateway's memory per upload,
# since the checker keeps this much of the stream's tail.
MAX_FOOTER_BYTES = 8 * 1024 * 1024

# A dataset's schema is kept in its record (a NATS KV value, at most 1 MiB)
# and travels in error messages: names and the schema as a whole are bounded.
MAX_COLUMN_NAME_CHARS = 1024
MAX_SCHEMA_BYTES = 512 * 1024

NOT_PARQUET_HINT = "upload a Parquet file (e.g. pandas: df.to_parquet('data.parquet')); CSV, JSON and text are not accepted"


class ParquetChecker:
    def __init__(self, *, expected_size: int = 0, expected_sha256: str = "", max_bytes: int):
        self.expected_size = expected_size
        self.expected_sha256 = expected_sha256.lower()
        self.max_bytes = max_bytes
        self.size = 0
        self._head = b""
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self._sha = hashlib.sha256() if expected_sha256 else None
        self.rows = 0
        self.columns: list[datasets_pb2.Column] = []

    def feed(self, chunk: bytes) -> None:
        """See the next chunk; raise as soon as the stream cannot be valid."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise errors.invalid_argument(
                "chunk",
                f"upload exceeds the limit of {self.max_bytes} bytes (FITYARD_MAX_UPLOAD_BYTES); split the data",
            )
        if self.expected_size and self.size > self.expected_size:
            raise errors.invalid_argument(
                "header.size_bytes",
                f"the header announced {self.expected_size} bytes but more were sent",
            )
        if len(self._head) < len(MAGIC):
            self._head += chunk[: len(MAGIC) - len(self._head)]
            if len(self._head) == len(MAGIC) and self._head != MAGIC:
                raise self._not_parquet("it does not start with the Parquet magic bytes PAR1")
        if self._sha is not None:
            self._sha.update(chunk)
        self._tail.append(chunk)
        self._tail_bytes += len(chunk)
        while self._tail and self._tail_bytes - len(self._tail[0]) >= MAX_FOOTER_BYTES + 8:
            self._tail_bytes -= len(self._tail.popleft())

    def finish(self) -> None:
        """The stream is complete: check size, hash and footer; read schema."""
        if self.expected_size and self.size != self.expected_size:
            raise errors.invalid_argument(
                "header.size_bytes",
                f"the header announced {self.expected_size} bytes but {self.size} arrived; the upload was cut short",
            )
        if self._sha is not None and self._sha.hexdigest() != self.expected_sha256:
            raise errors.invalid_argument(
                "header.sha256",
                f"the bytes received hash to {self._sha.hexdigest()}, not {self.expected_sha256}; upload the file again",
            )
        if self.size < 12:
            raise self._not_parquet(f"it is only {self.size} bytes long")
        tail = b"".join(self._tail)
        if tail[-4:] != MAGIC:
            raise self._not_parquet(
                "it does not end with the Parquet magic bytes PAR1 (truncated or not Parquet)"
            )
        (footer_len,) = struct.unpack("<I", tail[-8:-4])
        if footer_len > MAX_FOOTER_BYTES:
            raise errors.invalid_argument(
                "chunk",
                f"the Parquet footer is {footer_len} bytes, over the limit of {MAX_FOOTER_BYTES}",
            )
        if footer_len + 8 > min(len(tail), self.size - 4):
            raise self._not_parquet("its footer length points outside the file")
        try:
            parquet = pq.ParquetFile(pa.BufferReader(tail[-(footer_len + 8) :]))
            schema = parquet.schema_arrow
        except Exception as exc:  # any parse failure means "not Parquet"
            raise self._not_parquet(f"its footer cannot be read ({exc})") from exc
        self.rows = parquet.metadata.num_rows
        self.columns = [datasets_pb2.Column(name=f.name, type=str(f.type)) for f in schema]
        _check_schema_size(self.columns)

    @staticmethod
    def _not_parquet(reason: str) -> errors.ApiError:
        return errors.invalid_argument(
            "chunk", f"the uploaded file is not Parquet: {reason}; {NOT_PARQUET_HINT}"
        )


def _check_schema_size(columns: list[datasets_pb2.Column]) -> None:
    for index, column in enumerate(columns):
        if len(column.name) > MAX_COLUMN_NAME_CHARS:
            raise errors.invalid_argument(
                "chunk",
                f"column {index} has a name of {len(column.name):,} characters (it starts "
                f"{column.name[:40]!r}); names may have at most {MAX_COLUMN_NAME_CHARS:,}: rename it and upload again",
            )
    size = sum(column.ByteSize() for column in columns)
    if size > MAX_SCHEMA_BYTES:
        raise errors.invalid_argument(
            "chunk",
            f"the file's {len(columns):,} column names and types take {size:,} bytes, over the limit of "
            f"{MAX_SCHEMA_BYTES:,}: upload fewer columns (or shorter names)",
        )
