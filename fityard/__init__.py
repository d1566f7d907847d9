"""fityard: tabular model training as a service.

    from fityard import Client
    with Client() as c:
        fit = c.fit(c.upload("train.parquet")).wait()

The SDK names below load on first use (PEP 562), so `import fityard` and the
CLI start without pulling in gRPC until a command needs it, and services that
only import the generated code (fityard.v1) never load the SDK.
"""
from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

try:
    __version__ = metadata.version("fityard")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["Client", "Dataset", "Job", "FityardError", "JobFailed", "__version__"]

if TYPE_CHECKING:
    from fityard.client import Client, Dataset, FityardError, Job, JobFailed


def __getattr__(name: str):
    if name in __all__:
        from fityard import client

        return getattr(client, name)
    raise AttributeError(f"module 'fityard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
