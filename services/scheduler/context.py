"""What the scheduler's handlers and loops share, built once from the config:
NATS (connection, JetStream, the record buckets), the store and the output
janitor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from services.common import bus
from services.common.config import Config
from services.common.storage import ObjectStore, open_store

from .live_jobs import LiveJobs
from .outputs import OutputJanitor


@dataclass
class SchedulerContext:
    config: Config
    nc: NATS
    js: JetStreamContext
    jobs: KeyValue  # job records: the scheduler is their only writer
    datasets: KeyValue  # dataset records, read at admission
    requests: KeyValue  # idempotency keys: the job each submit's request_id created
    fits: KeyValue  # the fit cache's index (fit_cache.py)
    digests: KeyValue  # datasets by content (a deleted dataset's entry goes)
    store: ObjectStore
    janitor: OutputJanitor  # removes the outputs of attempts that do not count
    # the jobs not done yet: counts per tenant, queues per lane (live_jobs.py)
    live: LiveJobs = field(default_factory=LiveJobs)

    @classmethod
    async def connect(cls, config: Config) -> SchedulerContext:
        """The scheduler's dependencies, from its config: the store (ready)
        and NATS (the topology ensured)."""
        store = open_store(config.storage)
        await asyncio.to_thread(store.ensure_ready)
        nc = await bus.connect(config.nats_url, "fityard-scheduler", token=config.nats_token)
        js = nc.jetstream()
        await bus.ensure_topology(js, config)
        return cls(
            config=config,
            nc=nc,
            js=js,
            jobs=await bus.jobs_bucket(js),
            datasets=await bus.datasets_bucket(js),
            requests=await bus.requests_bucket(js),
            fits=await bus.fits_bucket(js),
            digests=await bus.digests_bucket(js),
            store=store,
            janitor=OutputJanitor(store),
        )

    async def close(self) -> None:
        await self.janitor.drain()
        await self.nc.drain()
