"""What a trainer's job loop uses, built once from the config: who it is, how
many threads a job may have, the cores it shares, its worker process, and
NATS (connection, JetStream, the job records)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from services.common import bus
from services.common.config import Config, usable_cores

from .cores import AllCores, CoreLeases
from .worker import WorkerProcess


@dataclass
class TrainerContext:
    config: Config  # heartbeat_seconds, max_attempts, max_classes, ...
    trainer_id: str
    threads: int  # the most threads one job may use
    cores: CoreLeases | AllCores
    worker: WorkerProcess
    nc: NATS
    js: JetStreamContext
    jobs: KeyValue  # job records, read (the scheduler writes them)

    @classmethod
    async def connect(cls, config: Config) -> TrainerContext:
        """A trainer's dependencies, from its config: NATS (the topology
        ensured), core leases shared with the machine's other trainers if
        FITYARD_CORE_LEASES_DIR is set, and a worker process (started by the
        job loop)."""
        trainer_id = config.trainer_id or f"{socket.gethostname()}-{os.getpid()}"
        threads = config.trainer_threads or usable_cores()
        nc = await bus.connect(
            config.nats_url, f"fityard-trainer-{trainer_id}", token=config.nats_token
        )
        js = nc.jetstream()
        await bus.ensure_topology(js, config)
        return cls(
            config=config,
            trainer_id=trainer_id,
            threads=threads,
            cores=(
                CoreLeases(config.core_leases_dir, usable_cores())
                if config.core_leases_dir
                else AllCores(threads)
            ),
            worker=WorkerProcess(config.storage, threads),
            nc=nc,
            js=js,
            jobs=await bus.jobs_bucket(js),
        )

    async def close(self) -> None:
        self.worker.kill()
        await self.nc.drain()
