"""Our load generator: many concurrent clients calling a gRPC method on
loopback, bounded in seconds and in calls (asyncio + grpc.aio, in this
process).

Why our own: ghz is not packaged anywhere reachable here and locust's model
is HTTP's; grpc.aio is the client an SDK user would write for concurrency,
and one Python process drives a few thousand unary calls a second on a
fraction of one core (its CPU is reported, as it shares the cores with
what it measures).

Two shapes. Closed loop: each client calls again as soon as it has its
answer (the most a server serves; by Little's law mean latency is clients
/ throughput). Paced: all clients together call on a fixed schedule of
`rate` calls a second, and a call's latency counts from when it was due,
so a server that falls behind is charged for the wait (no coordinated
omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def run_loops(
    call: Callable[[int], Awaitable],
    clients: int,
    seconds: float,
    *,
    rate: float | None = None,
    max_calls: int | None = None,
) -> list[float]:
    """`clients` loops awaiting `call(i)` (i counts the calls) for `seconds`
    or until `max_calls` calls were made; every call's latency, in seconds."""
    latencies: list[float] = []
    begin = time.perf_counter()
    deadline = begin + seconds
    limit = max_calls if max_calls is not None else float("inf")

    async def loop(n: int) -> None:
        i, interval = n, clients / rate if rate else 0.0
        due = begin + n * interval / clients
        while due < deadline and i < limit:
            if rate:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            else:
                due = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - due)
            i += clients
            due += interval

    await asyncio.gather(*(loop(n) for n in range(clients)))
    return latencies
