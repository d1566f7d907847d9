"""A tenant's upload quotas: the bytes of its stored datasets
(FITYARD_QUOTA_STORED_BYTES) and the rows and columns of one dataset
(FITYARD_QUOTA_DATASET_ROWS, FITYARD_QUOTA_DATASET_COLUMNS).

Stored bytes are the sum of the tenant's dataset records, read when an
upload is checked: models and predictions are not counted (they are small
next to the data they come from). The size an upload announces is checked
before a byte is read; the size, rows and columns it turns out to have are
checked once it is stored, and an upload over a quota is deleted at once.
"""

from __future__ import annotations

from nats.js.kv import KeyValue

from services.common import errors
from services.common.config import SCHEMA, Config
from services.common.records import list_records
from services.internal.v1 import records_pb2

FREE_BYTES = (
    "delete datasets you no longer need (DeleteDataset, `fityard delete DATASET_ID`) "
    "or ask for a larger quota"
)


async def stored_bytes(datasets: KeyValue, tenant: str) -> int:
    records = await list_records(datasets, tenant, records_pb2.DatasetRecord)
    return sum(record.size_bytes for record in records)


def check_stored_bytes(config: Config, tenant: str, used: int, adding: int) -> None:
    limit = config.quota_stored_bytes
    if used + adding > limit:
        raise errors.quota_exceeded(
            tenant,
            SCHEMA.env("quota_stored_bytes"),
            limit,
            used + adding,
            f"stored dataset bytes ({used:,} stored + {adding:,} uploaded)",
            FREE_BYTES,
        )


def check_shape(config: Config, tenant: str, rows: int, columns: int) -> None:
    if rows > config.quota_dataset_rows:
        raise errors.quota_exceeded(
            tenant,
            SCHEMA.env("quota_dataset_rows"),
            config.quota_dataset_rows,
            rows,
            "rows in one dataset",
            "upload a sample, or split the data and fit on a part",
        )
    if columns > config.quota_dataset_columns:
        raise errors.quota_exceeded(
            tenant,
            SCHEMA.env("quota_dataset_columns"),
            config.quota_dataset_columns,
            columns,
            "columns in one dataset",
            "drop the columns the model does not need before uploading",
        )
