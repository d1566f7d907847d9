"""Objects in MinIO or any S3 API, through the `minio` client.

Uploads stream: the chunks are read through a small file-like adapter by
`Minio.put_object(length=-1)`, which sends a single PUT for a small object
and a multipart upload (parts of `part_size`, >= 5 MiB) otherwise. S3 makes
the object visible only when the upload completes, and minio aborts the
multipart upload if reading the stream raises, so a refused or interrupted
upload leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from minio import Minio
from minio.error import S3Error

from ..config import StorageConfig
from .base import CHUNK_SIZE, ObjectInfo, ObjectNotFound, ObjectStore

MIN_PART_SIZE = 5 * 1024 * 1024
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound"}
# Parts uploaded concurrently: 2 keeps the network busy while the next part
# fills, and bounds memory to about 3 parts per upload.
PARALLEL_PARTS = 2


class _ChunkReader:
    """File-like view of an iterator of chunks, hashing what passes through.

    minio reads one part (part_size + 1 bytes) per call; chunks are joined
    once per read, so a part costs one copy, not one per chunk.
    """

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._rest = b""
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        parts = [self._rest] if self._rest else []
        have = len(self._rest)
        while n < 0 or have < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self.sha.update(chunk)
            self.size += len(chunk)
            parts.append(chunk)
            have += len(chunk)
        if n < 0 or have <= n:
            self._rest = b""
            return b"".join(parts)
        # Split the last chunk: the part gets its head, the rest waits.
        overflow = have - n
        last = parts.pop()
        parts.append(last[: len(last) - overflow])
        self._rest = last[len(last) - overflow :]
        return b"".join(parts)


class S3Store(ObjectStore):
    def __init__(self, config: StorageConfig):
        if config.part_size < MIN_PART_SIZE:
            raise ValueError(f"FITYARD_S3_PART_SIZE must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
        self.config = config
        self.bucket = config.bucket
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            region=config.region,
        )

    def ensure_ready(self) -> None:
        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        reader = _ChunkReader(chunks)
        self.client.put_object(
            self.bucket,
            key,
            reader,
            length=-1,
            part_size=self.config.part_size,
            num_parallel_uploads=PARALLEL_PARTS,
        )
        return ObjectInfo(key=key, size=reader.size, sha256=reader.sha.hexdigest())

    def _get(self, key: str):
        try:
            return self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(key) from None
            raise

    def read_stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        response = self._get(key)  # eagerly, so a missing key raises here

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.stream(chunk_size)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="fityard-s3-") as tmp:
            path = Path(tmp) / os.path.basename(key)
            try:
                self.client.fget_object(self.bucket, key, str(path))
            except S3Error as exc:
                if exc.code in _MISSING:
                    raise ObjectNotFound(key) from None
                raise
            yield path

    def stat(self, key: str) -> ObjectInfo:
        try:
            result = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(key) from None
            raise
        return ObjectInfo(key=key, size=result.size or 0)

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def list(self, prefix: str = "") -> Iterator[str]:
        keys = [obj.object_name for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        return iter(sorted(keys))
