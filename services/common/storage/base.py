"""The object-store interface every service uses.

Two backends implement it: `LocalStore` (a directory; the embedded default) and
`S3Store` (MinIO or any S3 API, through the `minio` client). Methods are
blocking; asyncio services call them through `asyncio.to_thread`.
"""
from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

CHUNK_SIZE = 1024 * 1024


class ObjectNotFound(KeyError):
    """No object under that key."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object at {self.key!r}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    # Hex SHA-256 of the bytes; set by write_stream/write_file, which compute it
    # while writing. stat() leaves it empty.
    sha256: str = ""


class ObjectStore(abc.ABC):
    """A flat key -> bytes store with atomic, streamed writes."""

    @abc.abstractmethod
    def ensure_ready(self) -> None:
        """Create the bucket or directory if missing. Idempotent."""

    @abc.abstractmethod
    def write_stream(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        """Store the bytes yielded by `chunks` under `key`.

        The object becomes visible only after the iterator is exhausted and
        every byte is stored. If the iterator or the store raises, nothing is
        left behind (temp file removed, S3 multipart upload aborted) and the
        exception propagates unchanged: callers validate data by raising from
        their iterator. Memory stays bounded by one S3 part, whatever the size.
        """

    def write_file(self, key: str, path: str | Path) -> ObjectInfo:
        """Store a local file under `key` (streamed, like write_stream)."""

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while block := f.read(CHUNK_SIZE):
                    yield block

        return self.write_stream(key, chunks())

    @abc.abstractmethod
    def read_stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the object's bytes in chunks. Raises ObjectNotFound before
        yielding anything if the key does not exist."""

    @abc.abstractmethod
    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """Context manager giving a local file path holding the object, for
        libraries that want a path (pandas, joblib). The local backend yields
        the stored file itself (read-only use!); S3 downloads to a temp file
        removed on exit. Raises ObjectNotFound."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size of the object (sha256 left empty). Raises ObjectNotFound."""

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; no error if it is already gone."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys of complete objects starting with `prefix`, sorted. Never
        includes in-progress or aborted uploads."""
