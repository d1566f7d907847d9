"""Objects in MinIO or any S3 API, through the `minio` client.

Uploads stream: the caller's chunks are read through a small file-like adapter
by `Minio.put_object(length=-1)`, which reads `part_size + 1` bytes at a time
and sends a single PUT for an object of at most one part, a multipart upload
otherwise. S3 makes the object visible only when the upload completes, and
minio aborts the multipart upload if reading the stream raises an `Exception`,
so a refused or interrupted upload leaves nothing behind. An upload whose
process is killed outright stays open on the server, its parts stored but
never listed; `sweep_incomplete` aborts those once their last part is old.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

from minio import Minio
from minio.error import S3Error

from ..config import StorageConfig
from ..tracing import store_span
from .base import (
    CHUNK_SIZE,
    DEFAULT_STALE_UPLOAD_SECONDS,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    check_age,
)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3 refuses smaller parts (except the last)
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound"}
_EPOCH = datetime.fromtimestamp(0, timezone.utc)

# Parts uploaded at once. 1, not minio's default 3, for two reasons:
# - memory: minio holds every in-flight part plus the one being read, and
#   copies a part twice while reading it; measured peak for a 48 MiB upload with
#   5 MiB parts: 17 MiB with 1, 27 MiB with 2, 32 MiB with 3.
# - minio 7.2's thread pool is never shut down when reading the stream raises:
#   each refused upload would leak that many blocked threads in the gateway,
#   and a part still in flight can land after the abort.
# The cost is no overlap between receiving a part and sending the previous
# one; gRPC's flow-control window keeps the client sending meanwhile.
PARALLEL_PARTS = 1


class _Interrupted(Exception):
    """Carries a BaseException raised by the caller's iterator (such as
    asyncio.CancelledError or KeyboardInterrupt) through minio, which aborts
    the multipart upload only on `Exception`; write_stream re-raises the
    original once minio has cleaned up."""

    def __init__(self, original: BaseException):
        super().__init__(repr(original))
        self.original = original


class _ChunkReader:
    """File-like `read(n)` over an iterator of chunks, hashing what passes.

    Holds the chunks of one read (a list, plus a zero-copy view of the part
    of a chunk the last read did not take) and joins them once per read: one
    copy of the bytes, where growing a bytearray and copying its head out
    took three at its peak (minio copies each part twice more itself).
    """

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._held: list[bytes | memoryview] = []
        self._held_bytes = 0
        self._eof = False
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or self._held_bytes < n):
            self._pull()
        if n < 0 or n >= self._held_bytes:
            out = b"".join(self._held)
            self._held, self._held_bytes = [], 0
            return out
        taken, need = [], n
        while need:
            piece = self._held.pop(0)
            if len(piece) <= need:
                taken.append(piece)
                need -= len(piece)
            else:
                view = memoryview(piece)
                taken.append(view[:need])
                self._held.insert(0, view[need:])
                need = 0
        self._held_bytes -= n
        return b"".join(taken)

    def _pull(self) -> None:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            return
        except Exception:
            raise  # minio aborts the upload and re-raises it unchanged
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt, GeneratorExit: not the data's fault
            raise _Interrupted(exc) from None
        self.sha.update(chunk)
        self.size += len(chunk)
        self._held.append(chunk)
        self._held_bytes += len(chunk)


class _ResponseChunks:
    """An object's body as an iterator with `close()`, which releases the
    HTTP connection whether or not iteration started (a generator's `finally`
    would not run if it never started)."""

    _response = None

    def __init__(self, response, chunk_size: int):
        self._response = response
        self._chunks = response.stream(chunk_size)

    def __iter__(self) -> _ResponseChunks:
        return self

    def __next__(self) -> bytes:
        if self._response is None:
            raise StopIteration  # closed
        try:
            return next(self._chunks)
        except BaseException:  # StopIteration included: done, either way
            self.close()
            raise

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()
            response.release_conn()

    def __del__(self) -> None:
        self.close()


def _is_missing(exc: S3Error) -> bool:
    """The key is absent. A missing *bucket* is a misconfiguration and must
    not look like a missing object; minio can only tell them apart for
    requests with a body (GET), as it names every HEAD 404 "NoSuchKey"."""
    if exc.code in _MISSING:
        return True
    status = getattr(exc.response, "status", None)
    return status == 404 and exc.code != "NoSuchBucket"


class S3Store(ObjectStore):
    def __init__(self, config: StorageConfig):
        if config.part_size < MIN_PART_SIZE:
            raise ValueError(
                f"FITYARD_S3_PART_SIZE={config.part_size} is too small: S3 parts must be at least "
                f"{MIN_PART_SIZE} bytes (5 MiB)"
            )
        if "://" in config.endpoint:
            raise ValueError(
                f"FITYARD_S3_ENDPOINT={config.endpoint!r} must be host:port, without a scheme "
                "(set FITYARD_S3_SECURE=true for https)"
            )
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
            # Another service created it between the check and here.
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        reader = _ChunkReader(chunks)
        interrupted: BaseException | None = None
        with self._span("put", key) as span:
            try:
                self.client.put_object(
                    self.bucket,
                    key,
                    reader,
                    length=-1,
                    part_size=self.config.part_size,
                    num_parallel_uploads=PARALLEL_PARTS,
                )
            except _Interrupted as stop:
                interrupted = stop.original
            if interrupted is not None:
                raise interrupted  # outside the except: no misleading context
            span.set_attribute("fityard.object.size", reader.size)
        return ObjectInfo(key=key, size=reader.size, sha256=reader.sha.hexdigest())

    def read_stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        # The request is made now, so a missing key raises before iteration.
        # Its span covers the request; reading the body is the caller's.
        with self._span("get", key):
            try:
                response = self.client.get_object(self.bucket, key)
            except S3Error as exc:
                if _is_missing(exc):
                    raise ObjectNotFound(key) from None
                raise
        return _ResponseChunks(response, chunk_size)

    @contextmanager
    def local_copy(self, key: str, dir: str | Path | None = None) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="fityard-s3-", dir=dir) as tmp:
            # Keep the key's file name: some readers go by the extension.
            path = Path(tmp) / (PurePosixPath(key).name or "object")
            with self._span("get", key) as span:  # the download, not the caller's use
                try:
                    self.client.fget_object(self.bucket, key, str(path))
                except S3Error as exc:
                    if _is_missing(exc):
                        raise ObjectNotFound(key) from None
                    raise
                if span.is_recording():
                    span.set_attribute("fityard.object.size", path.stat().st_size)
            yield path

    def stat(self, key: str) -> ObjectInfo:
        with self._span("stat", key):
            try:
                result = self.client.stat_object(self.bucket, key)
            except S3Error as exc:
                if _is_missing(exc):
                    raise ObjectNotFound(key) from None
                raise
        return ObjectInfo(key=key, size=result.size or 0)

    def delete(self, key: str) -> None:
        with self._span("delete", key):
            self.client.remove_object(self.bucket, key)  # S3 deletes are idempotent

    def _span(self, operation: str, key: str):
        """The call's span (inside a trace only: services/common/tracing.py).
        Manual, rather than opentelemetry-instrumentation-urllib3 around
        minio's HTTP requests: that package is not released at the version
        of opentelemetry-instrumentation the SDK installs (it pins it
        exactly; 0.66b2 has no urllib3 release), and one span per call (not
        per multipart part) is what a job's trace wants. No URL is recorded,
        so no signature can leak into it."""
        host, _, port = self.config.endpoint.rpartition(":")
        return store_span(
            operation,
            key,
            "s3",
            **{
                "aws.s3.bucket": self.bucket,
                "aws.s3.key": key,
                "server.address": host or port,
                **({"server.port": int(port)} if host and port.isdigit() else {}),
            },
        )

    def list(self, prefix: str = "") -> Iterator[str]:
        found = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
        return iter(sorted(obj.object_name for obj in found))

    # Listing and aborting multipart uploads: minio 7.2 has no public API for
    # them (7.x dropped list_incomplete_uploads/remove_incomplete_upload), so
    # these use its private wrappers of the S3 calls, which tests/test_storage.py
    # exercises against a real server.
    def sweep_incomplete(self, older_than: float = DEFAULT_STALE_UPLOAD_SECONDS) -> int:
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=check_age(older_than))
        removed = 0
        key_marker = upload_id_marker = None
        while True:
            page = self.client._list_multipart_uploads(  # noqa: SLF001 - minio has no public multipart listing
                self.bucket,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
                max_uploads=1000,
            )
            for upload in page.uploads:
                if upload.initiated_time is not None and upload.initiated_time >= cutoff:
                    continue  # started recently (no need to list its parts)
                if (
                    self._last_activity(upload.object_name, upload.upload_id, upload.initiated_time)
                    >= cutoff
                ):
                    continue  # sending parts recently: a live upload
                try:
                    self.client._abort_multipart_upload(  # noqa: SLF001 - minio has no public multipart listing
                        self.bucket, upload.object_name, upload.upload_id
                    )
                except S3Error as exc:
                    if exc.code != "NoSuchUpload":
                        raise
                    continue  # completed or aborted by someone else meanwhile
                removed += 1
            if not page.is_truncated or not page.uploads:
                return removed
            # The page's last upload is where the next starts (minio 7.2 does
            # not parse NextUploadIdMarker; these are the same values).
            key_marker, upload_id_marker = page.uploads[-1].object_name, page.uploads[-1].upload_id

    def _last_activity(self, key: str, upload_id: str, initiated: datetime | None) -> datetime:
        """When an upload last did something: its newest part's LastModified,
        or its initiation if that is later (no part yet). A future time for
        an upload that is gone, so it is left alone."""
        latest = initiated or _EPOCH
        marker = None
        while True:
            try:
                page = self.client._list_parts(  # noqa: SLF001 - minio has no public multipart listing
                    self.bucket, key, upload_id, part_number_marker=marker
                )
            except S3Error as exc:
                if exc.code == "NoSuchUpload":
                    return datetime.max.replace(tzinfo=timezone.utc)
                raise
            for part in page.parts:
                if part.last_modified is not None and part.last_modified > latest:
                    latest = part.last_modified
            if not page.is_truncated or not page.next_part_number_marker:
                return latest
            marker = page.next_part_number_marker
