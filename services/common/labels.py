"""Class labels on the wire: google.protobuf.Value, so that a label reads in
JSON (grpcurl, the SDK's dicts) as what the user wrote in `y`: 1, "cat",
true. Used for a fit's classes (FitMetrics) and online predictions.

Numbers travel as doubles (protobuf's Value has no integer): an integer label
beyond 2**53 would lose digits, which a class id never needs.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2


def to_value(label: Any) -> struct_pb2.Value:
    """A Value for a label (a Python or numpy scalar)."""
    if hasattr(label, "item"):  # numpy scalar
        label = label.item()
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(label, bool):
        return struct_pb2.Value(bool_value=label)
    if isinstance(label, (int, float)):
        return struct_pb2.Value(number_value=label)
    return struct_pb2.Value(string_value=str(label))


def to_values(labels) -> list[struct_pb2.Value]:
    return [to_value(label) for label in labels]
