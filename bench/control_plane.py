"""The control plane under load: many clients asking about jobs while jobs run.

The load generator is our own (bench/load.py: asyncio + grpc.aio, in this
process, on loopback; bounded in clients, streams and seconds).

While FITS fits run, WATCHERS WatchJob streams follow them (two per job)
and CLIENTS concurrent clients call GetJob on them for the set seconds,
twice: as fast as answers come (the most the gateway serves), then on a
schedule of TARGET_RATE calls a second (the p99 at that rate). Reported:
those, how many watchers saw their job's terminal state, the gateway's CPU
(cores) and memory growth. Baselines: the same calls on the same stack with
nothing else going on, just before.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from fityard import Client
from fityard.v1 import jobs_pb2, jobs_pb2_grpc

from .cpu import cpu_seconds
from .load import run_loops
from .measure import Figure, percentile, reset_peak_rss, rss_bytes

CLIENTS = 50
WATCHERS = 200
FITS = 100
TARGET_RATE = 2000.0  # GetJob calls per second, all clients together, in the paced run
TERMINAL = {jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}
WATCH_LIMIT_SECONDS = 300


async def _get_loops(
    stub: jobs_pb2_grpc.JobServiceStub,
    job_ids: list[str],
    clients: int,
    seconds: float,
    rate: float | None = None,
) -> list[float]:
    """`clients` loops calling GetJob for `seconds` (bench/load.py: closed
    loop, or paced at `rate`); every call's latency."""

    async def get(i: int) -> None:
        request = jobs_pb2.GetJobRequest(job_id=job_ids[i % len(job_ids)])
        await stub.GetJob(request, timeout=30)

    return await run_loops(get, clients, seconds, rate=rate)


async def _watch(stub: jobs_pb2_grpc.JobServiceStub, job_id: str) -> bool:
    """Follow one job; whether its terminal state was seen."""
    call = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), timeout=WATCH_LIMIT_SECONDS)
    async for response in call:
        if response.job.state in TERMINAL:
            return True
    return False


async def _load(
    address: str, job_ids: list[str], clients: int, seconds: float
) -> tuple[list[float], list[float], list[bool]]:
    """While WATCHERS streams follow the jobs: GetJob closed loop, then
    paced at TARGET_RATE. (closed-loop latencies, paced latencies, seen)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        watches = [
            asyncio.ensure_future(_watch(stub, job_ids[n % len(job_ids)])) for n in range(WATCHERS)
        ]
        closed = await _get_loops(stub, job_ids, clients, seconds)
        paced = await _get_loops(stub, job_ids, clients, seconds, rate=TARGET_RATE)
        seen = await asyncio.gather(*watches, return_exceptions=True)
    return closed, paced, [s is True for s in seen]


async def _idle(
    address: str, job_ids: list[str], clients: int, seconds: float, rate: float | None = None
) -> list[float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        return await _get_loops(stub, job_ids, clients, seconds, rate)


def measure_control_plane(
    stack, client: Client, dataset_id: str, seconds: float, fits: int = FITS
) -> list[Figure]:
    gateway = stack.pid("gateway")
    # Jobs to ask about on the idle stack: finished ones.
    done = [client.fit(dataset_id, max_iter=5) for _ in range(10)]
    done_ids = [job.wait().id for job in done]
    idle = asyncio.run(_idle(stack.address, done_ids, CLIENTS, seconds))
    idle_paced = asyncio.run(_idle(stack.address, done_ids, CLIENTS, seconds, TARGET_RATE))

    cpu_before, rss_before = cpu_seconds([gateway]), rss_bytes(gateway)[0]
    reset_peak_rss(gateway)
    started = time.perf_counter()
    # 100 boosting rounds each (the default): they run through the window.
    fit_ids = [client.fit(dataset_id).id for _ in range(fits)]
    closed, paced, seen = asyncio.run(_load(stack.address, fit_ids, CLIENTS, seconds))
    elapsed = time.perf_counter() - started
    gateway_cores = (cpu_seconds([gateway])[gateway] - cpu_before[gateway]) / elapsed
    growth = (rss_bytes(gateway)[1] - rss_before) / 2**20
    unfinished = sum(1 for job_id in fit_ids if not client.job(job_id).done)

    def ms(values: list[float], p: float) -> float:
        return percentile(values, p) * 1000

    system = f"fityard ({CLIENTS} clients, {WATCHERS} watchers, {fits} fits)"
    paced_rate = len(paced) / seconds
    return [
        Figure(
            "control plane: GetJob most req/s while fits run (closed loop)",
            system,
            len(closed) / seconds,
            "req/s",
            len(idle) / seconds,
            f"the same {CLIENTS} loops, idle stack",
            ">= 2,000 req/s (reference API: ~1,100)",
            met=len(closed) / seconds >= 2000,
            extra={"p50_ms": ms(closed, 50), "p99_ms": ms(closed, 99), "calls": len(closed)},
        ),
        Figure(
            f"control plane: GetJob p99 at {TARGET_RATE:.0f} req/s offered while fits run",
            system,
            ms(paced, 99),
            "ms",
            ms(idle_paced, 99),
            "the same, idle stack",
            f"<= 20 ms, {TARGET_RATE:.0f} req/s served",
            met=ms(paced, 99) <= 20 and paced_rate >= 0.99 * TARGET_RATE,
            extra={
                "served_req_s": paced_rate,
                "p50_ms": ms(paced, 50),
                "idle_p50_ms": ms(idle_paced, 50),
            },
        ),
        Figure(
            "control plane: watchers that saw their job end",
            system,
            sum(seen),
            "watchers",
            len(seen),
            "watchers opened",
            "all",
            met=all(seen),
            extra={"fits_unfinished_after_the_load": unfinished},
        ),
        Figure(
            "control plane: gateway CPU while loaded",
            system,
            gateway_cores,
            "cores",
            float(stack_cores()),
            "usable cores",
            extra={"window_s": elapsed},
        ),
        Figure(
            "control plane: gateway memory growth while loaded",
            system,
            growth,
            "MiB",
            rss_before / 2**20,
            "gateway RSS before",
        ),
    ]


def stack_cores() -> int:
    from services.common.config import usable_cores

    return usable_cores()
