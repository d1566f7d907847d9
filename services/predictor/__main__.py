"""Run a predictor: `python -m services.predictor` (settings: FITYARD_* env).

Start as many as the request rate needs, each reachable at an address of
its own (a pod's, or a port each on one machine, as `fityard up` does),
and give callers one name for all of them (a headless Service, or
`ipv4:HOST:P1,HOST:P2`): the gateway and the SDK spread calls over its
addresses one by one (round_robin). Several may also share one port on
one machine (SO_REUSEPORT), but the kernel then spreads connections, not
calls: each client's calls land on one predictor.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fityard.v1 import predictions_pb2, predictions_pb2_grpc
from services.common import api_keys, bus
from services.common.config import Config
from services.common.health import Health
from services.common.metrics import serve_metrics
from services.common.runtime import GrpcServer, run, server_tls, setup_logging, stop_event
from services.common.storage import open_store
from services.common.telemetry import setup_tracing

from . import metrics
from .models import ModelCache
from .service import PredictionService


async def main() -> None:
    log = setup_logging("predictor")
    setup_tracing("predictor")
    config = Config.from_env()
    guards = api_keys.guards(config, config.predictor_listen, "predictor")
    stop = stop_event()
    # Predictions run on one thread (scikit-learn's OpenMP too): a predictor
    # is one core's worth of work, and the pool scales with processes.
    # The heavy import (pandas, scikit-learn) before serving, and before the
    # limit: threadpoolctl limits only the thread pools already loaded, and
    # OpenMP's only for the thread that sets it, the prediction thread. (Its
    # default, a thread per core, spin-waits at every call's barrier: ten
    # times slower per call beside a busy process on the same cores.)
    from threadpoolctl import threadpool_limits

    import ml.model  # noqa: F401

    executor = ThreadPoolExecutor(
        1, thread_name_prefix="predict", initializer=threadpool_limits, initargs=(1,)
    )
    store = open_store(config.storage)
    await asyncio.to_thread(store.ensure_ready)
    nc = await bus.connect(config.nats_url, "fityard-predictor", token=config.nats_token)
    js = nc.jetstream()
    await bus.ensure_topology(js, config)
    cache = ModelCache(await bus.jobs_bucket(js), store, config.predictor_cache_bytes, executor)
    server = GrpcServer(
        config.predictor_listen,
        [predictions_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name],
        count_rpcs=bool(serve_metrics(config.metrics_listen, "predictor")),
        guards=guards,
        credentials=server_tls(config),
        pooled=True,
    )
    metrics.watch(cache)
    predictions_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(cache, executor, config.predict_max_rows), server.server
    )
    await server.start()
    # NOT_SERVING while NATS or the store is unreachable (services/common/health.py).
    health = Health(stop, server.set_serving)
    checking = asyncio.create_task(health.run(nc=nc, store=store))
    log.info(
        "predictor listening on port %d (models kept: up to %d bytes)",
        server.port,
        config.predictor_cache_bytes,
    )
    await stop.wait()
    log.info("stopping")
    await server.stop()
    await checking
    executor.shutdown(wait=False, cancel_futures=True)
    await nc.drain()


if __name__ == "__main__":
    run(main())
