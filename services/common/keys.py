"""Object-store keys. Every key starts with the tenant, so one tenant's data can
be listed, quota'd or deleted as a whole.

A job's outputs are stored per attempt (`<job_id>/attempt-<n>`): two attempts
of one job can run at once (a trainer that lost its heartbeat is still
fitting while the job's redelivery runs elsewhere), and neither may
overwrite the other. The job record names the attempt whose output counts
(`JobRecord.output_attempt`, the one that succeeded); the others are deleted.
"""

from __future__ import annotations

from fityard.v1 import jobs_pb2


def dataset_key(tenant: str, dataset_id: str) -> str:
    return f"tenants/{tenant}/datasets/{dataset_id}.parquet"


def model_key(tenant: str, job_id: str, attempt: int) -> str:
    return f"tenants/{tenant}/models/{job_id}/attempt-{attempt}.joblib"


def predictions_key(tenant: str, job_id: str, attempt: int) -> str:
    return f"tenants/{tenant}/predictions/{job_id}/attempt-{attempt}.parquet"


OUTPUT_KEYS = {
    jobs_pb2.JOB_OUTPUT_MODEL: model_key,
    jobs_pb2.JOB_OUTPUT_PREDICTIONS: predictions_key,
}


def output_prefixes(tenant: str, job_id: str) -> list[str]:
    """Prefixes under which any attempt of the job may have written."""
    return [f"tenants/{tenant}/models/{job_id}/", f"tenants/{tenant}/predictions/{job_id}/"]
