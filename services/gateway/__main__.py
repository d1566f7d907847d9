"""Run the gateway: `python -m services.gateway` (settings: FITYARD_* env)."""

from __future__ import annotations

import asyncio

import grpc

from fityard.v1 import datasets_pb2, datasets_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from services.common import bus
from services.common.config import Config
from services.common.runtime import MAX_MESSAGE_BYTES, GrpcServer, setup_logging, stop_event
from services.common.scratch import sweep_periodically
from services.common.storage import open_store
from services.internal.v1 import scheduler_pb2_grpc

from .context import Gateway
from .datasets import DatasetService
from .jobs import JobService


async def main() -> None:
    log = setup_logging("gateway")
    config = Config.from_env()
    stop = stop_event()
    # Uploads and downloads do not use asyncio's default thread pool: each
    # admitted transfer has a thread of its own (FITYARD_MAX_TRANSFERS of
    # them at most; see transfer.py). The default pool only serves short
    # store calls (ensure_ready, deleting a half-recorded upload).
    store = open_store(config.storage)
    await asyncio.to_thread(store.ensure_ready)
    # Uploads abandoned by a gateway that died mid-way (temp parts, S3
    # multipart uploads): at start, then periodically. Scratch is the
    # trainers' to sweep.
    sweeper = asyncio.create_task(
        sweep_periodically(
            store,
            every=config.sweep_seconds,
            older_than=config.stale_upload_seconds,
            stop=stop,
            scratch=False,
        )
    )
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
    log.info(
        "gateway listening on port %d (store: %s; at most %d transfers at once, idle ones ended after %gs)",
        server.port,
        config.storage.backend,
        config.max_transfers,
        config.transfer_idle_seconds,
    )
    await stop.wait()
    log.info("stopping")
    await server.stop()
    await channel.close()
    await sweeper
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
