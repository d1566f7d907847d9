"""Transfer: moving Parquet through the gateway, against the lower of two
ceilings measured beside it: the store's own rate and the transport's
(bench/grpc_ceiling.py)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fityard import Client
from fityard.limits import UPLOAD_CHUNK_BYTES
from services.common.storage import CHUNK_SIZE, ObjectStore

from .grpc_ceiling import RawStream
from .measure import Figure, reset_peak_rss, rss_bytes

MiB = 1024 * 1024


def make_parquet(path: Path, size_bytes: int) -> Path:
    """A Parquet file of about `size_bytes` of random doubles (incompressible,
    so the file is as big as asked), written in row groups to bound memory."""
    columns = 50
    rows = max(1, size_bytes // (8 * columns))
    rng = np.random.default_rng(0)
    schema = pa.schema([(f"col_{i}", pa.float64()) for i in range(columns)])
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        done = 0
        while done < rows:
            n = min(262_144, rows - done)
            block = rng.random((n, columns))
            writer.write_table(
                pa.Table.from_arrays([block[:, i] for i in range(columns)], schema=schema)
            )
            done += n
    return path


def _direct_write(store: ObjectStore, path: Path, key: str) -> float:
    started = time.perf_counter()
    store.write_file(key, path)
    return time.perf_counter() - started


def _direct_read(store: ObjectStore, key: str, out: Path) -> float:
    started = time.perf_counter()
    with open(out, "wb") as f:
        for chunk in store.read_stream(key):
            f.write(chunk)
    return time.perf_counter() - started


REPEATS = 3


def measure_transfer(
    client: Client,
    store: ObjectStore,
    gateway_pid: int,
    backend: str,
    path: Path,
    scratch: Path,
    raw: RawStream,
) -> list[Figure]:
    """Upload and download `path` through the gateway, REPEATS times; each
    time beside the two ceilings (the store's direct rate, a raw gRPC stream
    of the same bytes in messages of the same size), alternating so the
    VM's drift hits all three. Also the gateway's memory growth during each
    upload (the largest reported: any upload must stay under the goal)."""
    size = path.stat().st_size
    mib = size / MiB
    label = f"{mib:.0f} MiB"
    rates: dict[str, list[float]] = {}
    growths = []

    def rate(kind: str, seconds: float) -> None:
        rates.setdefault(kind, []).append(mib / seconds)

    for _ in range(REPEATS):
        rate("store up", _direct_write(store, path, f"bench/{path.name}"))
        rate("grpc up", raw.upload_seconds(path, UPLOAD_CHUNK_BYTES))
        rss_before, _ = rss_bytes(gateway_pid)
        reset_peak_rss(gateway_pid)
        started = time.perf_counter()
        dataset = client.upload(path, progress=False)
        rate("fityard up", time.perf_counter() - started)
        growths.append(max(0, rss_bytes(gateway_pid)[1] - rss_before) / MiB)

        rate("store down", _direct_read(store, f"bench/{path.name}", scratch / "direct.parquet"))
        rate("grpc down", raw.download_seconds(path, CHUNK_SIZE))
        started = time.perf_counter()
        client.download_dataset(dataset, scratch / "gateway.parquet", progress=False)
        rate("fityard down", time.perf_counter() - started)
        # Deleted, or the next upload of the same bytes would send nothing (dedup)
        client.delete_dataset(dataset)
        store.delete(f"bench/{path.name}")
        for leftover in ("direct.parquet", "gateway.parquet"):
            (scratch / leftover).unlink(missing_ok=True)

    figures = []
    for direction, verb in (("up", "upload"), ("down", "download")):
        ceilings = [
            min(a, b)
            for a, b in zip(rates[f"store {direction}"], rates[f"grpc {direction}"], strict=True)
        ]
        ratios = [r / c for r, c in zip(rates[f"fityard {direction}"], ceilings, strict=True)]
        value, ceiling = (
            statistics.median(rates[f"fityard {direction}"]),
            statistics.median(ceilings),
        )
        figures.append(
            Figure(
                f"transfer {label} {verb}",
                f"fityard, {backend} store",
                value,
                "MiB/s",
                ceiling,
                f"lower ceiling: store {statistics.median(rates[f'store {direction}']):.0f}, "
                f"raw gRPC {statistics.median(rates[f'grpc {direction}']):.0f} MiB/s",
                ">= 0.90",
                met=value / ceiling >= 0.9,
                extra={
                    "repeats": rates[f"fityard {direction}"],
                    "store": rates[f"store {direction}"],
                    "raw_grpc": rates[f"grpc {direction}"],
                    "spread": [min(ratios), max(ratios)],
                },
            )
        )
    growth = max(growths)
    figures.append(
        Figure(
            f"gateway memory growth, {label} upload",
            f"fityard, {backend} store",
            growth,
            "MiB",
            mib,
            "size of the upload",
            "< 64 MiB (first upload included)",
            met=growth < 64,
            extra={"repeats": growths},
        )
    )
    return figures
