"""Object-store keys. Every key starts with the tenant, so one tenant's data can
be listed, quota'd or deleted as a whole."""
from __future__ import annotations


def dataset_key(tenant: str, dataset_id: str) -> str:
    return f"tenants/{tenant}/datasets/{dataset_id}.parquet"


def model_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/models/{job_id}.joblib"


def predictions_key(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/predictions/{job_id}.parquet"
