"""The object-store interface every service uses.

Two backends implement it: `LocalStore` (a directory; the embedded default) and
`S3Store` (MinIO or any S3 API, through the `minio` client). Methods are
blocking; asyncio services call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import abc
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHUNK_SIZE = 1024 * 1024

# Default age after which an unfinished write counts as abandoned
# (FITYARD_STALE_UPLOAD_SECONDS). Both backends measure it from the write's
# last activity (the temp file's mtime, the newest S3 part), not from its
# start, so a long upload that keeps sending is never at risk; what this must
# exceed is the longest *pause* of a live upload: an idle or throttled client
# mid-stream. Six hours is far beyond that, and what a dead write leaves costs
# little for six hours.
DEFAULT_STALE_UPLOAD_SECONDS = 6 * 3600.0


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


class NewFile:
    """A file being written for an object (ObjectStore.new_file)."""

    def __init__(self, path: Path, keep):
        self.path = path
        self._keep = keep
        self.kept = False

    def keep(self) -> None:
        """Store what `path` holds under the object's key (atomically: the
        object appears whole, or not at all)."""
        self._keep()
        self.kept = True


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

    @contextmanager
    def new_file(self, key: str, dir: str | Path | None = None) -> Iterator[NewFile]:
        """A file to write the object `key` into, for writers that want a
        path (joblib, pandas): write to `.path`, then `.keep()` stores it;
        a file not kept when the block ends is dropped. This default writes
        in a temporary directory under `dir` and keeps with write_file; a
        store that can take the file as it is (LocalStore renames it into
        place) overrides it and saves the copy."""
        tmp = Path(tempfile.mkdtemp(prefix="fityard-new-", dir=dir))
        try:
            path = tmp / (PurePosixPath(key).name or "object")
            yield NewFile(path, lambda: self.write_file(key, path))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @abc.abstractmethod
    def read_stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the object's bytes in chunks. Raises ObjectNotFound before
        yielding anything if the key does not exist."""

    @abc.abstractmethod
    def local_copy(self, key: str, dir: str | Path | None = None) -> AbstractContextManager[Path]:
        """Context manager giving a local file path holding the object, for
        libraries that want a path (pandas, joblib). The local backend yields
        the stored file itself (read-only use!); S3 downloads to a temp file
        removed on exit, in a new temp directory inside `dir` (default: the
        system temp dir; a process that may be killed passes its scratch
        directory, services/common/scratch.py, so what a kill leaves behind
        can be swept). Raises ObjectNotFound."""

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

    @abc.abstractmethod
    def sweep_incomplete(self, older_than: float = DEFAULT_STALE_UPLOAD_SECONDS) -> int:
        """Remove what abandoned writes left behind; return how many were removed.

        A writer killed mid-write (SIGKILL, out of memory, power loss) cannot
        clean up: the local backend keeps its temp file `<root>/.tmp/*.part`,
        S3 keeps the multipart upload and its parts (stored, and billed,
        forever, though `list` never shows them). This removes each such
        leftover whose last activity is more than `older_than` seconds ago:
        - local: the temp file's mtime, which every chunk written refreshes;
        - S3: the newest of the upload's initiation time and its parts'
          LastModified (each part sent refreshes it), as the server's clock
          tells them (compared with this machine's clock: skew of minutes is
          irrelevant at the ages meant here).
        So a write that is making progress is never touched, however long it
        has been running. One paused for more than `older_than` cannot be told
        from a dead one: it is removed, and fails when it resumes, storing
        nothing (no half object ever becomes visible). Complete objects are
        never touched.

        Safe to run from several processes at once and next to live writes; a
        leftover removed by someone else meanwhile is not counted. Run it at
        service start and periodically (services/common/scratch.py:
        sweep_periodically). `older_than` must be >= 0 (0 removes every
        unfinished write: only for a store nobody is writing to).
        """


def check_age(older_than: float) -> float:
    """`older_than` as a float, refusing negative or non-numbers."""
    age = float(older_than)
    if not age >= 0:  # also refuses NaN
        raise ValueError(f"older_than must be a number of seconds >= 0, not {older_than!r}")
    return age
