"""Run a trainer: `python -m services.trainer` (settings: FITYARD_* env).

Start as many as you like; each takes jobs from the same JetStream consumer.
Trainers sharing a machine share FITYARD_CORE_LEASES_DIR so that together
they never use more threads than there are cores (services/trainer/cores.py);
FITYARD_TRAINER_THREADS caps the threads of one job.
"""

from __future__ import annotations

import asyncio

from services.common import bus
from services.common.config import Config
from services.common.health import Health
from services.common.metrics import serve_metrics
from services.common.runtime import GrpcServer, run, setup_logging, stop_event
from services.common.scratch import sweep_periodically
from services.common.storage import open_store
from services.common.telemetry import setup_tracing

from . import metrics
from .context import TrainerContext
from .runner import Trainer
from .status import StatusReporter


async def main() -> None:
    log = setup_logging("trainer")
    setup_tracing("trainer")
    config = Config.from_env()
    stop = stop_event()
    # Scratch directories of workers that were killed (here or by a trainer
    # that died before): at start, then periodically.
    sweeper = asyncio.create_task(
        sweep_periodically(
            None, every=config.sweep_seconds, stop=stop, scratch_root=config.scratch_dir or None
        )
    )
    ctx = await TrainerContext.connect(config)
    log.info(
        "trainer %s starting: up to %d threads a job, core leases %s",
        ctx.trainer_id,
        ctx.threads,
        config.core_leases_dir or "off",
    )
    # Its health (services/common/health.py): NATS, the store, the job loop;
    # in its log lines, and on grpc.health.v1 at FITYARD_TRAINER_HEALTH_LISTEN
    # if set (a trainer serves no other gRPC).
    server = GrpcServer(config.trainer_health_listen, []) if config.trainer_health_listen else None
    if server is not None:
        await server.start()
    health = Health(stop, server.set_serving if server is not None else None)
    checking = asyncio.create_task(health.run(nc=ctx.nc, store=open_store(config.storage)))
    trainer = Trainer(ctx)
    if serve_metrics(config.metrics_listen, f"trainer {ctx.trainer_id}"):
        metrics.watch(trainer, ctx.cores)
    # What `fityard top` shows of it (services/trainer/status.py).
    reporter = StatusReporter(await bus.trainers_bucket(ctx.js), trainer, ctx)
    reporting = asyncio.create_task(reporter.run(stop))
    try:
        jobs = asyncio.create_task(trainer.run(stop), name="job loop")
        health.watch_loop(jobs)
        await jobs
    finally:
        ctx.worker.kill()  # at once; a fit must not outlive its trainer's exit
        stop.set()
        if server is not None:
            await server.stop()
        await checking
        await reporting
        await sweeper
        await ctx.close()


if __name__ == "__main__":
    run(main())
