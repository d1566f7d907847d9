"""Run the gateway: `python -m services.gateway` (settings: FITYARD_* env)."""

from __future__ import annotations

import asyncio

from fityard.v1 import datasets_pb2, datasets_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from services.common import api_keys
from services.common.config import Config
from services.common.health import Health
from services.common.metrics import serve_metrics
from services.common.runtime import GrpcServer, run, server_tls, setup_logging, stop_event
from services.common.scratch import sweep_periodically
from services.common.telemetry import setup_tracing

from .context import GatewayContext
from .datasets import DatasetService
from .jobs import JobService
from .predictions import SERVICE as PREDICTION_SERVICE
from .predictions import PredictionForwarder


async def main() -> None:
    log = setup_logging("gateway")
    setup_tracing("gateway")
    config = Config.from_env()
    # before anything: exposed without keys, it stops here
    guards = api_keys.guards(config, config.gateway_listen, "gateway")
    stop = stop_event()
    ctx = await GatewayContext.connect(config)
    # Uploads abandoned by a gateway that died mid-way (temp parts, S3
    # multipart uploads): at start, then periodically. Scratch is the
    # trainers' to sweep.
    sweeper = asyncio.create_task(
        sweep_periodically(
            ctx.store,
            every=config.sweep_seconds,
            older_than=config.stale_upload_seconds,
            stop=stop,
            scratch=False,
        )
    )
    server = GrpcServer(
        config.gateway_listen,
        [
            datasets_pb2.DESCRIPTOR.services_by_name["DatasetService"].full_name,
            jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
            PREDICTION_SERVICE,
        ],
        count_rpcs=bool(serve_metrics(config.metrics_listen, "gateway")),
        guards=guards,
        credentials=server_tls(config),
    )
    datasets_pb2_grpc.add_DatasetServiceServicer_to_server(DatasetService(ctx), server.server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(ctx), server.server)
    predictions = PredictionForwarder(config.predictor_address, config.public_predict_address)
    server.server.add_generic_rpc_handlers((predictions.handler(),))
    await server.start()
    # NOT_SERVING while NATS or the store is unreachable (services/common/health.py).
    health = Health(stop, server.set_serving)
    checking = asyncio.create_task(health.run(nc=ctx.nc, store=ctx.store))
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
    await checking
    await sweeper
    await predictions.close()
    await ctx.close()


if __name__ == "__main__":
    run(main())
