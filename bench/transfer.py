"""Transfer: moving Parquet through the gateway vs straight to the store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fityard import Client
from services.common.storage import ObjectStore

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


def measure_transfer(
    client: Client, store: ObjectStore, gateway_pid: int, backend: str, path: Path, scratch: Path
) -> list[Figure]:
    """Upload and download `path` through the gateway and directly; for the
    largest file also the gateway's memory growth during the upload."""
    size = path.stat().st_size
    label = f"{size / MiB:.0f} MiB"
    mib = size / MiB

    direct_up = _direct_write(store, path, f"bench/{path.name}")
    rss_before, _ = rss_bytes(gateway_pid)
    reset_peak_rss(gateway_pid)
    started = time.perf_counter()
    dataset = client.upload(path, progress=False)
    gateway_up = time.perf_counter() - started
    _, peak = rss_bytes(gateway_pid)

    direct_down = _direct_read(store, f"bench/{path.name}", scratch / "direct.parquet")
    started = time.perf_counter()
    client.download_dataset(dataset, scratch / "gateway.parquet", progress=False)
    gateway_down = time.perf_counter() - started
    store.delete(f"bench/{path.name}")
    for leftover in ("direct.parquet", "gateway.parquet"):
        (scratch / leftover).unlink(missing_ok=True)

    name = f"transfer {label}"
    figures = [
        Figure(
            f"{name} upload",
            f"fityard, {backend} store",
            mib / gateway_up,
            "MiB/s",
            mib / direct_up,
            "direct write to the store",
            "ratio >= 0.8",
        ),
        Figure(
            f"{name} download",
            f"fityard, {backend} store",
            mib / gateway_down,
            "MiB/s",
            mib / direct_down,
            "direct read from the store",
            "ratio >= 0.8",
        ),
    ]
    for figure in figures:
        figure.met = figure.ratio >= 0.8
    growth = max(0, peak - rss_before) / MiB
    figures.append(
        Figure(
            f"gateway memory growth, {label} upload",
            f"fityard, {backend} store",
            growth,
            "MiB",
            mib,
            "size of the upload",
            "< 64 MiB",
            met=growth < 64,
        )
    )
    return figures
