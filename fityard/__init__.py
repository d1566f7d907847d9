"""fityard: tabular model training as a service.

    from fityard import Client
    with Client() as c:
        fit = c.fit(c.upload("train.parquet")).wait()

The public names are `__all__`: the `Client`, what it returns (`Dataset`,
`Job`) and the exceptions it raises (their tree is at the top of
fityard/_errors.py); `fityard.__version__` is the installed version. They
load on first use (PEP 562), so `import fityard` and the CLI start without
pulling in gRPC until a command needs it, and services that only import the
generated code (fityard.v1) never load the SDK.

This package is the light client (`pip install fityard`): it never imports
the server (services/, ml/), which is installed with `fityard[server]`.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

try:
    __version__ = metadata.version("fityard")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Client",
    "Dataset",
    "Job",
    "FitMetrics",
    "Prediction",
    # The exception hierarchy is documented at the top of fityard/_errors.py.
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
_MODEL_NAMES = {"Dataset", "Job", "FitMetrics", "Prediction"}
_ERROR_NAMES = set(__all__) - _MODEL_NAMES - {"Client"}

if TYPE_CHECKING:
    from fityard._errors import (
        AlreadyExists,
        DataLoss,
        DeadlineExceeded,
        FailedPrecondition,
        FityardError,
        Internal,
        InvalidArgument,
        JobFailed,
        JobTimeout,
        NotFound,
        PermissionDenied,
        ResourceExhausted,
        Unauthenticated,
        Unavailable,
    )
    from fityard._models import Dataset, FitMetrics, Job, Prediction
    from fityard.client import Client


def __getattr__(name: str):
    if name == "Client":
        from fityard.client import Client

        return Client
    if name in _MODEL_NAMES:
        from fityard import _models

        return getattr(_models, name)
    if name in _ERROR_NAMES:
        from fityard import _errors

        return getattr(_errors, name)
    raise AttributeError(f"module 'fityard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
