"""Run a trainer: `python -m services.trainer` (settings: FITYARD_* env).

Start as many as the machine has room for; each takes jobs from the same
JetStream consumer. FITYARD_TRAINER_THREADS sets each one's thread budget,
so that trainers x threads stays within the cores.
"""
from __future__ import annotations

import asyncio
import os
import socket

from services.common import bus
from services.common.config import Config, usable_cores
from services.common.runtime import setup_logging, stop_event

from .runner import Trainer
from .worker import WorkerProcess


async def main() -> None:
    log = setup_logging("trainer")
    config = Config.from_env()
    stop = stop_event()
    trainer_id = config.trainer_id or f"{socket.gethostname()}-{os.getpid()}"
    threads = config.trainer_threads or usable_cores()
    nc = await bus.connect(config.nats_url, f"fityard-trainer-{trainer_id}")
    js = nc.jetstream()
    await bus.ensure_topology(js, max_deliver=config.max_deliver)
    worker = WorkerProcess(config.storage, threads)
    trainer = Trainer(nc, js, await bus.jobs_bucket(js), worker, trainer_id, config.heartbeat_seconds)
    log.info("trainer %s starting with %d threads", trainer_id, threads)
    try:
        await trainer.run(stop)
    finally:
        worker.kill()
        await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
