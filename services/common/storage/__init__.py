"""Object storage behind one interface: `open_store(config)` picks the backend."""

from __future__ import annotations

from ..config import StorageConfig
from .base import (
    CHUNK_SIZE,
    DEFAULT_STALE_UPLOAD_SECONDS,
    NewFile,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_STALE_UPLOAD_SECONDS",
    "NewFile",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "open_store",
]


def open_store(config: StorageConfig) -> ObjectStore:
    """The store `config` describes. Backends are imported on demand: a
    service on the local store never loads the S3 client."""
    backend = config.backend.strip().lower()
    if backend == "local":
        from .local import LocalStore

        return LocalStore(config.root)
    if backend == "s3":
        from .s3 import S3Store

        return S3Store(config)
    raise ValueError(
        f"FITYARD_STORAGE={config.backend!r} is not a storage backend; use 'local' or 's3'"
    )
