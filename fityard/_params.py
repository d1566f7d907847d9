"""Fit parameters: keyword arguments (or the CLI's NAME=VALUE strings) made
into a fityard.v1.FitParams, refused before sending when a name is not a
parameter or a value has the wrong type, as the server would refuse it."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from fityard._errors import invalid_argument
from fityard.v1 import jobs_pb2


def _coerce(fd: FieldDescriptor, value: Any) -> Any:
    """Convert a CLI string (or a bool for early_stopping) to the field's
    type; other values go through as given and protobuf checks them."""
    if fd.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
        if isinstance(value, bool):
            raise TypeError("bool is not an integer")
        return int(value) if isinstance(value, str) else value
    if fd.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        if isinstance(value, bool):
            raise TypeError("bool is not a number")
        return float(value) if isinstance(value, str) else value
    if fd.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return str(value).lower() if isinstance(value, bool) else value
    return value


def fit_params(**params: Any) -> jobs_pb2.FitParams:
    """FitParams from keyword arguments (HistGradientBoostingClassifier names).

    Strings are converted to the field's type so that `--param max_iter=50`
    works; None leaves a parameter unset. A name that is not a parameter or a
    value of the wrong type raises FityardError INVALID_ARGUMENT naming
    `params.<name>`, like the server does for values out of range.
    """
    fields = jobs_pb2.FitParams.DESCRIPTOR.fields_by_name
    message = jobs_pb2.FitParams()
    for name, value in params.items():
        if value is None:
            continue
        fd = fields.get(name)
        if fd is None:
            raise invalid_argument(
                f"params.{name}", f"is not a fit parameter; known: {', '.join(fields)}"
            )
        try:
            setattr(message, name, _coerce(fd, value))
        except (TypeError, ValueError):
            kind = {
                FieldDescriptor.CPPTYPE_DOUBLE: "a number",
                FieldDescriptor.CPPTYPE_STRING: "a string",
            }.get(fd.cpp_type, "an integer")
            raise invalid_argument(f"params.{name}", f"{value!r} is not {kind}") from None
    return message


PRIORITIES = ("interactive", "batch")


def priority_value(priority: str | None) -> int:
    """A Priority from "interactive", "batch" or None (the server chooses by
    the job's size); INVALID_ARGUMENT naming `priority` for anything else."""
    if priority is None:
        return jobs_pb2.PRIORITY_UNSPECIFIED
    name = str(priority).lower()
    if name not in PRIORITIES:
        raise invalid_argument(
            "priority",
            f"must be one of {', '.join(PRIORITIES)} or None (by size), got {priority!r}",
        )
    return jobs_pb2.Priority.Value(f"PRIORITY_{name.upper()}")
