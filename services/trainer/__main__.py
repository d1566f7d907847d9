"""Run a trainer: `python -m services.trainer` (settings: FITYARD_* env).

Start as many as you like; each takes jobs from the same JetStream consumer.
Trainers sharing a machine share FITYARD_CORE_LEASES_DIR so that together
they never use more threads than there are cores (services/trainer/cores.py);
FITYARD_TRAINER_THREADS caps the threads of one job.
"""

from __future__ import annotations

import asyncio

from services.common.config import Config
from services.common.runtime import setup_logging, stop_event
from services.common.scratch import sweep_periodically

from .context import TrainerContext
from .runner import Trainer


async def main() -> None:
    log = setup_logging("trainer")
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
    try:
        await Trainer(ctx).run(stop)
    finally:
        ctx.worker.kill()  # at once; a fit must not outlive its trainer's exit
        stop.set()
        await sweeper
        await ctx.close()


if __name__ == "__main__":
    asyncio.run(main())
