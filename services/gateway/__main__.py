"""Run the gateway: `python -m services.gateway` (settings: FITYARD_* env)."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import grpc

from fityard.internal.v1 import scheduler_pb2_grpc
from fityard.v1 import datasets_pb2, datasets_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from services.common import bus
from services.common.config import Config
from services.common.runtime import MAX_MESSAGE_BYTES, GrpcServer, setup_logging, stop_event
from services.common.storage import open_store

from .context import Gateway
from .datasets import DatasetService
from .jobs import JobService


async def main() -> None:
    log = setup_logging("gateway")
    config = Config.from_env()
    stop = stop_event()
    # Every transfer holds a thread (the store's reader or writer) for its
    # whole duration; asyncio's default pool (cores + 4) would cap the
    # gateway at a handful of concurrent uploads and downloads.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="store"))
    store = open_store(config.storage)
    await asyncio.to_thread(store.ensure_ready)
    nc = await bus.connect(config.nats_url, "fityard-gateway")
    js = nc.jetstream()
    await bus.ensure_topology(js, config)
    channel = grpc.aio.insecure_channel(
        config.scheduler_address,
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
    )
    gateway = Gateway(
        config=config,
        store=store,
        jobs=await bus.jobs_bucket(js),
        datasets=await bus.datasets_bucket(js),
        scheduler=scheduler_pb2_grpc.SchedulerServiceStub(channel),
    )
    server = GrpcServer(
        config.gateway_listen,
        [
            datasets_pb2.DESCRIPTOR.services_by_name["DatasetService"].full_name,
            jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
        ],
    )
    datasets_pb2_grpc.add_DatasetServiceServicer_to_server(DatasetService(gateway), server.server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(gateway), server.server)
    await server.start()
    log.info("gateway listening on port %d (store: %s)", server.port, config.storage.backend)
    await stop.wait()
    log.info("stopping")
    await server.stop()
    await channel.close()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
