"""Baselines measured in the same run: what the machine does with no
fityard in the way."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import RetentionPolicy, StreamConfig

from services.embedded import free_port, nats_server_binary

from .measure import bare_fit_seconds


def jetstream_round_trips(n: int) -> list[float]:
    """Seconds for publish (with its JetStream ack) -> pull fetch -> ack of
    one message on a work-queue stream, on a fresh nats-server: the floor
    under fityard's dispatch."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as store_dir:
        server = subprocess.Popen(
            [nats_server_binary(), "-js", "-sd", store_dir, "-a", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return asyncio.run(_round_trips(f"nats://127.0.0.1:{port}", n))
        finally:
            server.terminate()
            server.wait(10)


async def _round_trips(url: str, n: int) -> list[float]:
    async def starting(_exc: Exception) -> None:
        """nats-py would print each refused connection's traceback."""

    for _ in range(100):
        try:
            nc = await nats.connect(url, error_cb=starting, allow_reconnect=False)
            break
        except Exception:  # noqa: BLE001 - server still starting
            await asyncio.sleep(0.05)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name="BENCH", subjects=["bench.>"], retention=RetentionPolicy.WORK_QUEUE)
    )
    sub = await js.pull_subscribe("bench.job", durable="bench")
    times = []
    for i in range(n + 10):
        started = time.perf_counter()
        await js.publish("bench.job", b"x" * 200)
        (msg,) = await sub.fetch(1, timeout=5)
        await msg.ack()
        if i >= 10:  # warm-up excluded
            times.append(time.perf_counter() - started)
    await nc.close()
    return times


def bare_fit(train_path: Path, runs: int = 3) -> float:
    """Median seconds of an in-process ml.fit with every core."""
    bare_fit_seconds(train_path)  # warm caches and imports
    return sorted(bare_fit_seconds(train_path) for _ in range(runs))[runs // 2]
