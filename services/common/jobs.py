"""Small helpers on job records that more than one service needs."""

from __future__ import annotations

from fityard.v1 import jobs_pb2


def kind_name(kind: int) -> str:
    """ "fit" / "predict": the form used in subjects and messages."""
    return jobs_pb2.JobKind.Name(kind).removeprefix("JOB_KIND_").lower()


def state_name(state: int) -> str:
    return jobs_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def params_dict(params: jobs_pb2.FitParams) -> dict:
    """The parameters a user actually set (unset ones keep sklearn's defaults)."""
    return {
        field.name: getattr(params, field.name)
        for field in params.DESCRIPTOR.fields
        if params.HasField(field.name)
    }
