"""The API's resources as errors and logs name them (AIP-122): a collection
and an id, `datasets/ds_660f9693e1a2b7c3d4e5`, `jobs/job_660f9693f935c20d9b60`. A
model has no collection of its own: it is named by the fit job that trained
it (`jobs/<id>`), as the API names it (`model_id` is a fit job's id).

The google.rpc.ResourceInfo of an error carries the resource's full message
name (`fityard.v1.Dataset`) as its type and this name as its name."""

from __future__ import annotations

from dataclasses import dataclass

from fityard.v1 import datasets_pb2, jobs_pb2


@dataclass(frozen=True)
class Collection:
    """One kind of resource: how its ids look and how it is named."""

    type: str  # full name of the public message, e.g. "fityard.v1.Dataset"
    plural: str  # collection id in resource names, e.g. "datasets"
    id_prefix: str  # ids start with this and "_", e.g. "ds"
    example: str  # an id as users see them, for messages

    def name(self, resource_id: str) -> str:
        """The resource name of `resource_id`, e.g. "datasets/ds_…"."""
        return f"{self.plural}/{resource_id}"


DATASETS = Collection(
    datasets_pb2.Dataset.DESCRIPTOR.full_name, "datasets", "ds", "ds_660f9693e1a2b7c3d4e5"
)
JOBS = Collection(jobs_pb2.Job.DESCRIPTOR.full_name, "jobs", "job", "job_660f9693f935c20d9b60")
