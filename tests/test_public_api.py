"""The SDK's public names: exactly those documented, each importable from
`fityard` and documented, and the older import paths still working."""

from __future__ import annotations

import inspect

import pytest

import fityard

# README.md (Python SDK) and fityard/_errors.py document these.
PUBLIC = [
    "Client",
    "Dataset",
    "Job",
    "FitMetrics",
    "Prediction",
    "FityardError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unavailable",
    "DeadlineExceeded",
    "PermissionDenied",
    "Unauthenticated",
    "DataLoss",
    "Internal",
    "JobFailed",
    "JobTimeout",
]


def test_all_is_exactly_the_documented_names():
    assert fityard.__all__ == PUBLIC
    # Not a name to import, but there, as in every package.
    assert isinstance(fityard.__version__, str) and fityard.__version__


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_importable_and_documented(name):
    obj = getattr(fityard, name)
    assert obj.__name__ == name
    # __doc__ itself, not inherited: each says what it is.
    assert obj.__doc__ and obj.__doc__.strip(), f"fityard.{name} has no docstring"
    assert name in dir(fityard)


def test_star_import_gives_the_public_names():
    namespace: dict = {}
    exec("from fityard import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(PUBLIC)


def test_the_errors_are_one_tree():
    errors = set(PUBLIC) - {"Client", "Dataset", "Job", "FitMetrics", "Prediction", "JobTimeout"}
    assert all(issubclass(getattr(fityard, n), fityard.FityardError) for n in errors)
    assert issubclass(fityard.JobTimeout, TimeoutError)
    assert not issubclass(fityard.JobTimeout, fityard.FityardError)


@pytest.mark.parametrize("cls", ["Client", "Job", "Dataset"])
def test_public_methods_and_properties_are_documented(cls):
    undocumented = [
        name
        for name, member in vars(getattr(fityard, cls)).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, (property, classmethod)))
        and not inspect.getdoc(member)
    ]
    assert undocumented == []


def test_the_older_import_paths_still_work():
    from fityard.client import (
        CHUNK_SIZE,
        DEFAULT_ADDRESS,
        Client,
        Dataset,
        FityardError,
        Job,
        JobFailed,
        JobTimeout,
        fit_params,
    )

    assert (Client, Dataset, Job) == (fityard.Client, fityard.Dataset, fityard.Job)
    assert (FityardError, JobFailed, JobTimeout) == (
        fityard.FityardError,
        fityard.JobFailed,
        fityard.JobTimeout,
    )
    assert CHUNK_SIZE > 0 and DEFAULT_ADDRESS == "localhost:50051"
    assert fit_params(max_iter="50").max_iter == 50


def test_job_shows_no_server_internals():
    # cores, lane, tenant and trainer_id are the server's business (its
    # records), not the public Job's.
    for name in ("cores", "lane", "tenant", "trainer_id"):
        assert not hasattr(fityard.Job, name)
