"""Objects as files under one directory: the embedded, single-machine store.

Writes go to `<root>/.tmp/` first and are renamed into place when complete
(`os.replace` is atomic on one filesystem), so readers never see half an
object and an aborted write leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .base import CHUNK_SIZE, ObjectInfo, ObjectNotFound, ObjectStore

TMP_DIR = ".tmp"


class LocalStore(ObjectStore):
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == TMP_DIR:
            raise ValueError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def ensure_ready(self) -> None:
        (self.root / TMP_DIR).mkdir(parents=True, exist_ok=True)

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        final = self._path(key)
        self.ensure_ready()
        tmp = self.root / TMP_DIR / f"{uuid.uuid4().hex}.part"
        sha = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(key=key, size=size, sha256=sha.hexdigest())

    def read_stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            f = open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

        def chunks() -> Iterator[bytes]:
            with f:
                while block := f.read(chunk_size):
                    yield block

        return chunks()

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        yield path

    def stat(self, key: str) -> ObjectInfo:
        try:
            return ObjectInfo(key=key, size=self._path(key).stat().st_size)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        keys = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and TMP_DIR in dirnames:
                dirnames.remove(TMP_DIR)
            for name in filenames:
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))
