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
from services.common.scratch import sweep_periodically

from .cores import AllCores, CoreLeases
from .runner import Trainer, TrainerSettings
from .worker import WorkerProcess


async def main() -> None:
    log = setup_logging("trainer")
    config = Config.from_env()
    stop = stop_event()
    trainer_id = config.trainer_id or f"{socket.gethostname()}-{os.getpid()}"
    threads = config.trainer_threads or usable_cores()
    cores = (
        CoreLeases(config.core_leases_dir, usable_cores())
        if config.core_leases_dir
        else AllCores(threads)
    )
    # Scratch directories of workers that were killed (here or by a trainer
    # that died before): at start, then periodically.
    sweeper = asyncio.create_task(
        sweep_periodically(
            None, every=config.sweep_seconds, stop=stop, scratch_root=config.scratch_dir or None
        )
    )
    nc = await bus.connect(config.nats_url, f"fityard-trainer-{trainer_id}")
    js = nc.jetstream()
    await bus.ensure_topology(js, config)
    worker = WorkerProcess(config.storage, threads)
    settings = TrainerSettings(
        trainer_id=trainer_id,
        heartbeat_seconds=config.heartbeat_seconds,
        max_threads=threads,
        max_attempts=config.max_attempts,
        max_classes=config.max_classes,
    )
    trainer = Trainer(nc, js, await bus.jobs_bucket(js), worker, cores, settings)
    log.info(
        "trainer %s starting: up to %d threads a job, core leases %s",
        trainer_id,
        threads,
        config.core_leases_dir or "off",
    )
    try:
        await trainer.run(stop)
    finally:
        worker.kill()
        stop.set()
        await sweeper
        await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
