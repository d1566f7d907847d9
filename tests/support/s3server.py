"""The S3 server of the tests: moto's server as a real subprocess
(tools/s3server.py, shared with bench/), and a boto3 view of what it holds,
independent of the minio client the store uses."""

from __future__ import annotations

from services.common.config import StorageConfig
from tools.s3server import (
    ACCESS_KEY,
    PART_SIZE,
    SECRET_KEY,
    MotoS3Server,
    s3_env,
    storage_config_for,
)

__all__ = [
    "ACCESS_KEY",
    "PART_SIZE",
    "SECRET_KEY",
    "MotoS3Server",
    "multipart_uploads",
    "s3_client",
    "s3_env",
    "storage_config_for",
]


def s3_client(config: StorageConfig):
    """A boto3 client of its own, to see what the server really holds
    (independent of the minio client the store uses)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://{config.endpoint}",
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        region_name=config.region,
    )


def multipart_uploads(config: StorageConfig) -> list[str]:
    """Keys of the multipart uploads in progress (or abandoned) in the bucket."""
    return [
        u["Key"]
        for u in s3_client(config).list_multipart_uploads(Bucket=config.bucket).get("Uploads", [])
    ]
