"""Object-store keys (services/common/keys.py): a tenant's data lies under
one prefix, attempts of a job never share an output key, and a job's
prefixes find its outputs and nobody else's."""

from __future__ import annotations

import pytest

from fityard.v1 import jobs_pb2
from services.common.keys import (
    OUTPUT_KEYS,
    dataset_key,
    model_key,
    output_prefixes,
    predictions_key,
)

OUTPUTS = [model_key, predictions_key]


def test_everything_of_a_tenant_lies_under_its_prefix():
    keys = [dataset_key("acme", "ds_1")] + [key("acme", "job_1", 1) for key in OUTPUTS]
    assert all(k.startswith("tenants/acme/") for k in keys)
    assert not any(k.startswith("tenants/acm/") for k in keys)


def test_datasets_are_parquet_files_and_models_joblib_files():
    assert dataset_key("t", "ds_1").endswith("/ds_1.parquet")
    assert model_key("t", "job_1", 1).endswith(".joblib")
    assert predictions_key("t", "job_1", 1).endswith(".parquet")


@pytest.mark.parametrize("key", OUTPUTS)
def test_two_attempts_of_a_job_never_write_the_same_key(key):
    assert len({key("t", "job_1", attempt) for attempt in range(1, 6)}) == 5


def test_a_model_and_predictions_never_share_a_key():
    assert model_key("t", "job_1", 1) != predictions_key("t", "job_1", 1)


def test_every_output_kind_has_its_key():
    assert set(OUTPUT_KEYS) == {jobs_pb2.JOB_OUTPUT_MODEL, jobs_pb2.JOB_OUTPUT_PREDICTIONS}
    assert OUTPUT_KEYS[jobs_pb2.JOB_OUTPUT_MODEL]("t", "j", 2) == model_key("t", "j", 2)
    assert OUTPUT_KEYS[jobs_pb2.JOB_OUTPUT_PREDICTIONS]("t", "j", 2) == predictions_key("t", "j", 2)


def owned(prefixes: list[str], key: str) -> bool:
    return any(key.startswith(p) for p in prefixes)


def test_a_jobs_prefixes_find_every_output_of_every_attempt():
    prefixes = output_prefixes("t", "job_1")
    assert all(owned(prefixes, key("t", "job_1", a)) for key in OUTPUTS for a in (1, 2, 10))


def test_a_jobs_prefixes_find_no_other_jobs_outputs_nor_any_dataset():
    # job_1's cleanup must not touch job_10 (whose id job_1's starts), nor
    # another tenant's job_1, nor a dataset.
    prefixes = output_prefixes("t", "job_1")
    others = [key("t", "job_10", 1) for key in OUTPUTS] + [key("u", "job_1", 1) for key in OUTPUTS]
    others.append(dataset_key("t", "job_1"))
    assert not any(owned(prefixes, k) for k in others)
