"""Run a trainer: `python -m services.trainer` (settings: FITYARD_* env).

Start as many as you like; each takes jobs from the same JetStream consumer.
Trainers sharing a machine share FITYARD_CORE_LEASES_DIR so that together
they never use more threads than there are cores (services/trainer/cores.py);
FITYARD_TRAINER_THREADS caps the threads of one job.
"""
from __future__ import annotations

import asyncio
import os
import socket

from services.common import bus
from services.common.config import Config, usable_cores
from services.common.runtime import setup_logging, stop_event

from .cores import AllCores, CoreLeases
from .runner import Trainer
from .worker import WorkerProcess


async def main() -> None:
    log = setup_logging("trainer")
    config = Config.from_env()
    stop = stop_event()
    trainer_id = config.trainer_id or f"{socket.gethostname()}-{os.getpid()}"
    threads = config.trainer_threads or usable_cores()
    cores = CoreLeases(config.core_leases_dir, usable_cores()) if config.core_leases_dir else AllCores(threads)
    nc = await bus.connect(config.nats_url, f"fityard-trainer-{trainer_id}")
    js = nc.jetstream()
    await bus.ensure_topology(js, config)
    worker = WorkerProcess(config.storage, threads)
    trainer = Trainer(
        nc, js, await bus.jobs_bucket(js), worker, trainer_id, config.heartbeat_seconds, cores, max_threads=threads
    )
    log.info("trainer %s starting: up to %d threads a job, core leases %s", trainer_id, threads, config.core_leases_dir or "off")
    try:
        await trainer.run(stop)
    finally:
        worker.kill()
        await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
