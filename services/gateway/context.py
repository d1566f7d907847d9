"""What the gateway's handlers share, built once from the config: the store,
the KV buckets, the scheduler stub, the transfer limits; and who the caller
is."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from services.common import bus, errors
from services.common.api_keys import current_tenant
from services.common.bus import record_key
from services.common.config import Config
from services.common.digests import DigestIndex
from services.common.internal_auth import gateway_sends
from services.common.records import decode, get_record
from services.common.resources import DATASETS, JOBS
from services.common.runtime import MAX_MESSAGE_BYTES
from services.common.storage import ObjectStore, open_store
from services.common.telemetry import grpc_client_interceptors
from services.internal.v1 import records_pb2, scheduler_pb2_grpc

from .job_updates import JobUpdates
from .transfer import Transfers

# Commands forwarded to the scheduler are quick; a scheduler that does not
# answer in this time (restarting takes seconds) is reported as
# DEADLINE_EXCEEDED rather than hanging the caller.
SCHEDULER_DEADLINE_SECONDS = 30.0


@dataclass
class GatewayContext:
    config: Config
    store: ObjectStore
    nc: NATS
    jobs: KeyValue
    datasets: KeyValue
    channel: grpc.aio.Channel  # to the scheduler
    scheduler: scheduler_pb2_grpc.SchedulerServiceStub
    # One per gateway: its DatasetService and JobService share the count.
    transfers: Transfers
    # The tenant's datasets by content (digests.py).
    digests: DigestIndex
    # Every job record change, shared by WatchJob and GetJob (job_updates.py).
    job_updates: JobUpdates

    @classmethod
    async def connect(cls, config: Config) -> GatewayContext:
        """The gateway's dependencies, from its config: the store (ready),
        NATS (the topology ensured) and a channel to the scheduler."""
        # Uploads and downloads do not use asyncio's default thread pool: each
        # admitted transfer has a thread of its own (FITYARD_MAX_TRANSFERS of
        # them at most; see transfer.py). The default pool only serves short
        # store calls (ensure_ready, deleting a half-recorded upload).
        store = open_store(config.storage)
        await asyncio.to_thread(store.ensure_ready)
        nc = await bus.connect(config.nats_url, "fityard-gateway", token=config.nats_token)
        js = nc.jetstream()
        await bus.ensure_topology(js, config)
        channel = grpc.aio.insecure_channel(
            config.scheduler_address,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
            interceptors=[*gateway_sends(config), *grpc_client_interceptors()],
        )
        datasets = await bus.datasets_bucket(js)
        jobs = await bus.jobs_bucket(js)
        job_updates = await JobUpdates(nc, jobs, bus.JOBS_BUCKET).start()
        return cls(
            config=config,
            store=store,
            nc=nc,
            jobs=jobs,
            job_updates=job_updates,
            datasets=datasets,
            digests=DigestIndex(await bus.digests_bucket(js), datasets),
            channel=channel,
            scheduler=scheduler_pb2_grpc.SchedulerServiceStub(channel),
            transfers=Transfers(
                store,
                max_transfers=config.max_transfers,
                idle_seconds=config.transfer_idle_seconds,
            ),
        )

    async def close(self) -> None:
        await self.job_updates.stop()
        await self.channel.close()
        await self.nc.drain()

    async def job_record(self, tenant: str, job_id: str) -> records_pb2.JobRecord:
        """The caller's job: INVALID_ARGUMENT naming `job_id` if the id is
        malformed, NOT_FOUND naming `jobs/<id>` if there is no such job."""
        return (await self.job_version(tenant, job_id))[0]

    async def job_version(self, tenant: str, job_id: str) -> tuple[records_pb2.JobRecord, int]:
        """`job_record` and its KV revision (what WatchJob streams from)."""
        errors.check_id("job_id", job_id, JOBS)
        found = await self.job_updates.read(record_key(tenant, job_id))
        if found is None:
            raise errors.not_found(JOBS, job_id)
        revision, value = found
        return decode(value, records_pb2.JobRecord), revision

    async def dataset_record(self, tenant: str, dataset_id: str) -> records_pb2.DatasetRecord:
        """The caller's dataset, as `job_record` for `datasets/<id>`."""
        errors.check_id("dataset_id", dataset_id, DATASETS)
        found = await get_record(self.datasets, tenant, dataset_id, records_pb2.DatasetRecord)
        if found is None:
            raise errors.not_found(DATASETS, dataset_id)
        return found[0]


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's tenant: its API key's (auth.py), the default tenant when
    the gateway runs open."""
    return current_tenant()
