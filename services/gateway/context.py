"""What the gateway's handlers share: the store, the KV buckets, the
scheduler stub, and who the caller is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from nats.js.kv import KeyValue

from services.common import errors
from services.common.config import DEFAULT_TENANT, Config
from services.common.records import get_record
from services.common.storage import ObjectStore
from services.internal.v1 import scheduler_pb2_grpc

M = TypeVar("M", bound=Message)

DATASET_ID_EXAMPLE = "ds_3f9c1a2b4d5e6f70"
JOB_ID_EXAMPLE = "job_5b0c9e7d1a2f3e4d"


@dataclass
class Gateway:
    config: Config
    store: ObjectStore
    jobs: KeyValue
    datasets: KeyValue
    scheduler: scheduler_pb2_grpc.SchedulerServiceStub


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's tenant. One default tenant until API keys exist; this is
    the single place that will read them."""
    return DEFAULT_TENANT


async def require_record(
    kv: KeyValue, tenant: str, record_id: str, cls: type[M], kind: str, field: str, example: str
) -> M:
    """The caller's record `record_id`: INVALID_ARGUMENT naming `field` if the
    id is malformed, NOT_FOUND naming the id if there is no such record."""
    errors.check_id(field, record_id, example)
    found = await get_record(kv, tenant, record_id, cls)
    if found is None:
        raise errors.not_found(kind, record_id)
    return found[0]
