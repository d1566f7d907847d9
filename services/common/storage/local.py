"""Objects as files under one directory: the embedded, single-machine store.

Writes go to `<root>/.tmp/` first and are renamed into place when complete
(`os.replace` is atomic within one filesystem, and `.tmp` is inside the root so
it is the same filesystem), so readers never see half an object and an aborted
write leaves nothing behind. A write killed outright (SIGKILL, out of memory)
leaves its `.tmp/<uuid>.part`; `sweep_incomplete` removes those once their
mtime is old.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..tracing import store_span
from .base import (
    CHUNK_SIZE,
    DEFAULT_STALE_UPLOAD_SECONDS,
    NewFile,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    check_age,
)

TMP_DIR = ".tmp"
PART_SUFFIX = ".part"


class _FileChunks:
    """The chunks of an already-open file, as an iterator with `close()`.

    A generator would only close the file once it had started running; this
    closes it whenever the caller calls `close()`, iterated or not (the
    gateway may drop a stream it never started)."""

    def __init__(self, file: BinaryIO, chunk_size: int):
        self._file = file
        self._chunk_size = chunk_size

    def __iter__(self) -> _FileChunks:
        return self

    def __next__(self) -> bytes:
        if self._file.closed:
            raise StopIteration
        block = self._file.read(self._chunk_size)
        if not block:
            self.close()
            raise StopIteration
        return block

    def close(self) -> None:
        self._file.close()


def _place(tmp: Path, final: Path) -> None:
    """Rename a finished temp file into place (atomic within the root's
    filesystem), making the key's directories first."""
    for attempt in range(3):
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, final)
            return
        except FileNotFoundError:  # a delete pruned the emptied directory
            if attempt == 2:
                raise


class LocalStore(ObjectStore):
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        """The file holding `key`. Refuses keys that could point outside the
        root (`..`, absolute) or into the temp area (which `list` hides), and
        empty segments, which S3 would keep but a filesystem would merge."""
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts) or parts[0] == TMP_DIR:
            raise ValueError(
                f"invalid object key {key!r}: use a relative 'a/b/c' path, with no empty, '.' or '..' "
                f"segments and not under {TMP_DIR!r}"
            )
        return self.root.joinpath(*parts)

    def _file(self, key: str) -> Path:
        """The file holding `key`, or ObjectNotFound. A directory is not an
        object: after writing 'a/b', the key 'a' does not exist (as on S3)."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def ensure_ready(self) -> None:
        (self.root / TMP_DIR).mkdir(parents=True, exist_ok=True)

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        final = self._path(key)
        self.ensure_ready()
        tmp = self.root / TMP_DIR / f"{uuid.uuid4().hex}{PART_SUFFIX}"
        sha = hashlib.sha256()
        size = 0
        with store_span("put", key, "local") as span:
            try:
                with open(tmp, "wb") as f:
                    for chunk in chunks:
                        f.write(chunk)
                        sha.update(chunk)
                        size += len(chunk)
                _place(tmp, final)
            except BaseException:
                # Anything, including KeyboardInterrupt or a CancelledError raised
                # by the caller's iterator: the half-written file must not stay.
                tmp.unlink(missing_ok=True)
                raise
            span.set_attribute("fityard.object.size", size)
        return ObjectInfo(key=key, size=size, sha256=sha.hexdigest())

    @contextmanager
    def new_file(self, key: str, dir: str | Path | None = None) -> Iterator[NewFile]:
        """Written in the store's temp area and renamed into place when
        kept: no copy (`dir` is not needed). A writer killed outright leaves
        a `.part` for sweep_incomplete, as write_stream does."""
        final = self._path(key)
        self.ensure_ready()
        tmp = self.root / TMP_DIR / f"{uuid.uuid4().hex}{PART_SUFFIX}"

        def keep() -> None:
            with store_span("put", key, "local") as span:
                if span.is_recording():
                    span.set_attribute("fityard.object.size", tmp.stat().st_size)
                _place(tmp, final)

        try:
            yield NewFile(tmp, keep)
        finally:
            tmp.unlink(missing_ok=True)  # not kept (once kept, it is no longer there)

    def read_stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        # Opened now, so a missing key raises before the caller iterates, and
        # an overwrite after this call does not change what is read.
        # Its span covers the opening; the reading is the caller's.
        with store_span("get", key, "local"):
            try:
                f = open(self._file(key), "rb")
            except FileNotFoundError:  # deleted since the check
                raise ObjectNotFound(key) from None
        return _FileChunks(f, chunk_size)

    @contextmanager
    def local_copy(self, key: str, dir: str | Path | None = None) -> Iterator[Path]:
        with store_span("get", key, "local") as span:  # not the caller's use of it
            path = self._file(key)
            if span.is_recording():
                span.set_attribute("fityard.object.size", path.stat().st_size)
        yield path  # the stored file itself: no copy, so `dir` is not needed

    def stat(self, key: str) -> ObjectInfo:
        with store_span("stat", key, "local"):
            try:
                return ObjectInfo(key=key, size=self._file(key).stat().st_size)
            except FileNotFoundError:  # deleted since the check
                raise ObjectNotFound(key) from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        with store_span("delete", key, "local"):
            if path.is_file():
                path.unlink(missing_ok=True)
            # Directories exist only for the keys under them (as in S3, where
            # a prefix is nothing of its own): the emptied ones go too.
            for parent in path.parents:
                if parent == self.root or self.root not in parent.parents:
                    break
                try:
                    parent.rmdir()
                except OSError:  # not empty (or written to meanwhile): keep it
                    break

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        keys = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and TMP_DIR in dirnames:
                dirnames.remove(TMP_DIR)  # in-progress writes are not objects
            for name in filenames:
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def sweep_incomplete(self, older_than: float = DEFAULT_STALE_UPLOAD_SECONDS) -> int:
        cutoff = time.time() - check_age(older_than)
        try:
            entries = list(os.scandir(self.root / TMP_DIR))
        except FileNotFoundError:
            return 0
        removed = 0
        for entry in entries:
            if not entry.name.endswith(PART_SUFFIX):
                continue  # not a write_stream temp file: not ours to judge
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                    continue  # written to recently: a live write
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # completed, aborted or swept by someone else meanwhile
            removed += 1
        return removed
