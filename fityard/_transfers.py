"""Files in and out: uploads and downloads streamed in chunks, so memory
stays flat whatever their size.

An upload is hashed on the way and checked against the SHA-256 the server
stored; a download is written to a ".part" file renamed only once every
byte has arrived. A transfer the gateway refuses because it is serving its
limit of transfers (RESOURCE_EXHAUSTED with a RetryInfo) is tried again
after the delay it asks for. A progress bar (tqdm) shows on stderr when it
is a terminal. pandas and pyarrow are needed only for DataFrames (the
`fityard[data]` extra); files need neither.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import grpc

from fityard._errors import ResourceExhausted, error_for, error_from
from fityard._models import Dataset
from fityard._tracing import trace_metadata
from fityard.limits import UPLOAD_CHUNK_BYTES
from fityard.v1 import datasets_pb2, jobs_pb2

if TYPE_CHECKING:
    import pandas as pd

    from fityard.v1 import datasets_pb2_grpc

# Uploads go out in 1 MiB chunks: well under the per-message limit the SDK
# shares with the gateway (MAX_MESSAGE_BYTES, fityard/limits.py), large
# enough that framing overhead does not matter.
CHUNK_SIZE = UPLOAD_CHUNK_BYTES
# An upload or download the gateway refuses because it is serving its limit
# of transfers (RESOURCE_EXHAUSTED with a RetryInfo) is tried this many times
# in all, waiting the delay it asks for, doubled each time (with jitter, at
# most TRANSFER_BACKOFF_MAX seconds). A download is retried only before any
# of its bytes arrived.
TRANSFER_ATTEMPTS = 6
TRANSFER_BACKOFF_MAX = 8.0

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
DATA_EXTRA = "pip install 'fityard[data]'"


# -- optional packages -----------------------------------------------------------


def require_data(what: str) -> ModuleType:
    """pandas, once we know pyarrow is there too; else an ImportError saying
    which extra to install. `what` is what needed them."""
    missing = []
    for name in ("pandas", "pyarrow"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"{what} needs {' and '.join(missing)}: {DATA_EXTRA}", name=missing[0]
        ) from None
    return sys.modules["pandas"]


def is_dataframe(obj: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas ourselves (if
    the caller has one, pandas is already loaded)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(obj, pandas.DataFrame)


def progress_bar(total: int, desc: str, show: bool | None):
    """A tqdm byte counter on stderr; by default only when stderr is a
    terminal, so logs and pipes stay clean."""
    from tqdm import tqdm

    if show is None:
        isatty = getattr(sys.stderr, "isatty", None)
        show = bool(isatty and isatty())
    return tqdm(
        total=total or None,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not show,
        leave=False,
    )


# -- retries -------------------------------------------------------------------


def retry_delay(error: grpc.RpcError) -> float | None:
    """Seconds to wait before trying a refused transfer again, if the
    gateway refused it for being busy (RESOURCE_EXHAUSTED carrying a
    google.rpc.RetryInfo); None for any other error, which is not retried
    (gRPC's own RESOURCE_EXHAUSTED for a message over the size limit carries
    no RetryInfo)."""
    refused = error_from(error, "")
    return refused.retry_delay if isinstance(refused, ResourceExhausted) else None


def backoff(delay: float, attempt: int) -> float:
    """The wait before retry number `attempt` (0-based) of a refused transfer."""
    jitter = random.uniform(0.5, 1.5)  # noqa: S311 - spreading retries, not a secret
    return min(max(delay, 0.1) * 2**attempt, TRANSFER_BACKOFF_MAX) * jitter


# -- uploads -------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def stored_dataset(
    stub: datasets_pb2_grpc.DatasetServiceStub, address: str, sha256: str
) -> Dataset | None:
    """The caller's dataset with these bytes, if the server has one."""
    try:
        response = stub.ListDatasets(
            datasets_pb2.ListDatasetsRequest(filter=f"sha256={sha256}", page_size=1),
            metadata=trace_metadata(),
        )
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return None  # a server that cannot look datasets up by content
        raise error_from(error, address) from None
    return Dataset.from_proto(response.datasets[0]) if response.datasets else None


def upload_file(
    stub: datasets_pb2_grpc.DatasetServiceStub,
    address: str,
    path: Path,
    name: str,
    progress: bool | None,
    dedup: bool = True,
) -> Dataset:
    """Upload the file at `path` as `name`, retried while the gateway is
    busy; the Dataset once the server's SHA-256 matches what was sent.

    With `dedup`, the file's digest is offered first: if the server holds
    these bytes already, that dataset is returned and nothing is sent (the
    server keeps one copy per content in any case; this saves the transfer)."""
    known = None  # the file's digest, if already computed
    if dedup:
        known = file_sha256(path)
        existing = stored_dataset(stub, address, known)
        if existing is not None:
            return existing
    size = path.stat().st_size
    attempt = 0
    while True:
        try:
            response, digest = _upload_once(stub, path, name, size, progress, hashed=known)
            break
        except grpc.RpcError as error:
            delay = retry_delay(error)  # the gateway is busy: try again in a moment
            attempt += 1
            if delay is None or attempt >= TRANSFER_ATTEMPTS:
                raise error_from(error, address) from None
            time.sleep(backoff(delay, attempt - 1))
    dataset = Dataset.from_proto(response.dataset)
    if dataset.sha256 != digest:
        raise error_for(
            grpc.StatusCode.DATA_LOSS,
            f"dataset {dataset.id!r} was stored with sha256 {dataset.sha256} but {path} hashes to "
            f"{digest}; the bytes were changed on the way (or the file changed while "
            "uploading): upload it again",
        )
    return dataset


def _upload_once(
    stub: datasets_pb2_grpc.DatasetServiceStub,
    path: Path,
    name: str,
    size: int,
    progress: bool | None,
    hashed: str | None = None,
):
    """One Upload call streaming the file from its start: (response, sha256
    of what was sent). `hashed`: the file's digest, computed just before (for
    dedup): not computed twice; a file changed since shows as a mismatch."""
    digest = hashlib.sha256()
    with path.open("rb") as f, progress_bar(size, f"upload {name}", progress) as bar:

        def requests() -> Iterator[datasets_pb2.UploadRequest]:
            yield datasets_pb2.UploadRequest(
                header=datasets_pb2.UploadHeader(name=name, size_bytes=size)
            )
            while chunk := f.read(CHUNK_SIZE):
                if hashed is None:
                    digest.update(chunk)
                bar.update(len(chunk))
                yield datasets_pb2.UploadRequest(chunk=chunk)

        response = stub.Upload(requests(), metadata=trace_metadata())
        return response, hashed or digest.hexdigest()


def upload_dataframe(
    stub: datasets_pb2_grpc.DatasetServiceStub,
    address: str,
    frame: pd.DataFrame,
    name: str,
    progress: bool | None,
    dedup: bool = True,
) -> Dataset:
    """Upload a DataFrame (without its index) as Parquet named `name`."""
    require_data("uploading a DataFrame")
    # Written to a temporary file first so the upload is the same
    # streamed, size-announced, hashed path as for any file.
    with tempfile.TemporaryDirectory(prefix="fityard-") as tmp:
        path = Path(tmp) / "frame.parquet"
        frame.to_parquet(path, index=False)
        return upload_file(stub, address, path, name, progress, dedup)


# -- downloads -----------------------------------------------------------------


def open_download(start: Callable[[], Any], address: str):
    """Start a download call (`start()`) and read its first message:
    (call, the rest of its responses, first message or None). A call
    the gateway refuses for being busy is started again after a while;
    nothing has been written yet at that point."""
    attempt = 0
    while True:
        call = start()
        responses = iter(call)
        try:
            return call, responses, next(responses, None)
        except grpc.RpcError as error:
            call.cancel()
            delay = retry_delay(error)
            attempt += 1
            if delay is None or attempt >= TRANSFER_ATTEMPTS:
                raise error_from(error, address) from None
            time.sleep(backoff(delay, attempt - 1))


def output_info(first: jobs_pb2.DownloadJobOutputResponse | None) -> jobs_pb2.OutputInfo:
    """The description a job output's download starts with."""
    if first is None or first.WhichOneof("payload") != "info":
        raise error_for(
            grpc.StatusCode.DATA_LOSS, "the server did not describe the file before sending it"
        )
    return first.info


# A file name from the server made safe to join to a directory: no path
# separators, no leading dots (nor "." / ".."), printable characters only.
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str, fallback: str = "download") -> str:
    """The last component of `name`, cleaned so that `directory / name`
    stays inside `directory`: a dataset named "../../.bashrc" by its
    uploader is written as "bashrc", never beside or above the directory."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip(". ").strip()
    return base[:255] or fallback


def receive(
    responses: Iterable[jobs_pb2.DownloadJobOutputResponse],
    info: jobs_pb2.OutputInfo,
    path: Path,
    progress: bool | None,
) -> Path:
    """Write the chunks to `path` (or into it under the server's file name,
    made safe, if it is a directory) via a ".part" file renamed at the end,
    so an interrupted download never looks like a complete one."""
    if path.is_dir():
        path = path / safe_name(info.filename)
    partial = path.with_name(path.name + ".part")
    received = 0
    try:
        with (
            partial.open("wb") as f,
            progress_bar(info.size_bytes, f"download {path.name}", progress) as bar,
        ):
            for response in responses:
                f.write(response.chunk)
                received += len(response.chunk)
                bar.update(len(response.chunk))
        if info.size_bytes and received != info.size_bytes:
            raise error_for(
                grpc.StatusCode.DATA_LOSS,
                f"{info.filename}: received {received} bytes of {info.size_bytes}; download it again",
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read_frame(
    responses: Iterable[jobs_pb2.DownloadJobOutputResponse],
    info: jobs_pb2.OutputInfo,
    progress: bool | None,
) -> pd.DataFrame:
    """The downloaded Parquet file as a DataFrame (via a temporary file)."""
    pd = require_data("a download as a DataFrame")
    with tempfile.TemporaryDirectory(prefix="fityard-") as tmp:
        path = receive(responses, info, Path(tmp) / (info.filename or "output.parquet"), progress)
        return pd.read_parquet(path)
