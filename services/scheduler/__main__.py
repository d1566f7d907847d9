"""Run the scheduler: `python -m services.scheduler` (settings: FITYARD_* env).

Besides its gRPC service it runs three loops: folding trainer events into job
records, reconciling queued records with the JOBS stream, and writing queued
jobs' places in line (queue_board.py). If one
cannot go on, health turns NOT_SERVING and the process exits non-zero, so
its supervisor (`fityard up`, compose, Kubernetes) restarts it: a scheduler
that answers health checks but folds no events would strand every job.
"""

from __future__ import annotations

import asyncio
import sys

from services.common import bus
from services.common.config import Config
from services.common.health import Health
from services.common.internal_auth import scheduler_guards
from services.common.metrics import serve_metrics
from services.common.runtime import GrpcServer, run, setup_logging, stop_event
from services.common.telemetry import setup_tracing
from services.internal.v1 import scheduler_pb2, scheduler_pb2_grpc

from .context import SchedulerContext
from .events import EventFolder
from .metrics import watch_queue
from .queue_board import QueueBoard
from .reconcile import reconcile_periodically
from .service import SchedulerService


async def main() -> int:
    log = setup_logging("scheduler")
    setup_tracing("scheduler")
    config = Config.from_env()
    guards = scheduler_guards(config)  # before anything: exposed without a token, it stops here
    stop = stop_event()
    ctx = await SchedulerContext.connect(config)
    if serve_metrics(config.metrics_listen, "scheduler"):
        watch_queue(ctx.js)
    server = GrpcServer(
        config.scheduler_listen,
        [scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name],
        count_rpcs=bool(config.metrics_listen),
        guards=guards,
    )
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(SchedulerService(ctx), server.server)
    await server.start()
    log.info("scheduler listening on port %d, NATS %s", server.port, bus.redacted(config.nats_url))
    loops = {
        asyncio.create_task(EventFolder(ctx).run(stop), name="event folding"),
        asyncio.create_task(reconcile_periodically(ctx, stop), name="reconciliation"),
        asyncio.create_task(
            QueueBoard(ctx, await bus.trainers_bucket(ctx.js)).run(stop), name="queue board"
        ),
    }
    # NOT_SERVING while NATS or the store is unreachable or a loop is down
    # (services/common/health.py).
    health = Health(stop, server.set_serving)
    for loop in loops:
        health.watch_loop(loop)
    checking = asyncio.create_task(health.run(nc=ctx.nc, store=ctx.store))
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopping, *loops}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for loop in done & loops:
        if loop.cancelled() or loop.exception() is not None or not stop.is_set():
            log.error("%s stopped: %s; exiting for a restart", loop.get_name(), loop.exception())
            code = 1
    stop.set()
    await server.stop()  # health says NOT_SERVING first
    await asyncio.gather(*loops, checking, return_exceptions=True)
    await ctx.close()
    return code


if __name__ == "__main__":
    sys.exit(run(main()))
