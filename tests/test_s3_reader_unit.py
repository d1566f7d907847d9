"""The S3 store's chunk reader: minio asks for a part at a time (`read(n)`),
the gateway hands it chunks of other sizes; every byte comes out once, in
order, and the digest covers exactly what was read."""

from __future__ import annotations

import hashlib

from services.common.storage.s3 import _ChunkReader


def test_reads_of_any_size_return_the_chunks_bytes_in_order():
    data = bytes(range(256)) * 40  # 10,240 bytes
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    reader = _ChunkReader(chunks)
    parts = [reader.read(3001), reader.read(1), reader.read(2500)]
    parts.append(reader.read(-1))
    assert [len(p) for p in parts] == [3001, 1, 2500, 10240 - 5502]
    assert all(isinstance(p, bytes) for p in parts)
    assert b"".join(parts) == data
    assert reader.read(10) == b""  # at the end: empty, as a file
    assert (reader.size, reader.sha.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())


def test_a_read_larger_than_what_is_left_returns_the_rest():
    reader = _ChunkReader([b"abc", b"def"])
    assert reader.read(100) == b"abcdef"
    assert reader.read(100) == b""
