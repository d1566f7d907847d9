"""Run the scheduler: `python -m services.scheduler` (settings: FITYARD_* env)."""
from __future__ import annotations

import asyncio

from fityard.internal.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.common import bus
from services.common.config import Config
from services.common.runtime import GrpcServer, setup_logging, stop_event

from .events import consume_events
from .service import SchedulerService


async def main() -> None:
    log = setup_logging("scheduler")
    config = Config.from_env()
    stop = stop_event()
    nc = await bus.connect(config.nats_url, "fityard-scheduler")
    js = nc.jetstream()
    await bus.ensure_topology(js, config)
    jobs = await bus.jobs_bucket(js)
    datasets = await bus.datasets_bucket(js)

    server = GrpcServer(
        config.scheduler_listen,
        [scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name],
    )
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(
        SchedulerService(nc, js, jobs, datasets), server.server
    )
    await server.start()
    log.info("scheduler listening on port %d, NATS %s", server.port, config.nats_url)
    events = asyncio.create_task(consume_events(js, jobs, stop))
    await stop.wait()
    log.info("stopping")
    await server.stop()
    await events
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
