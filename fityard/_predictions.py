"""Online predictions in the SDK: rows to a PredictRequest and its answer
back to Python.

A list of dicts travels as protobuf Structs (what grpcurl sends as JSON) and
comes back as `Prediction`s: no pandas needed, so the light client can
score rows. A DataFrame travels as Arrow IPC bytes (its types kept: a
categorical stays one, an integer stays an integer) and comes back as a
DataFrame with `y` and one `proba_<class>` column per class, on the
caller's index, like the file a batch predict with probabilities writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fityard._errors import invalid_argument
from fityard._models import Prediction, label_of
from fityard._transfers import is_dataframe, require_data
from fityard.v1 import predictions_pb2

# Trailing metadata of a Predict answered through the gateway: where the
# caller may reach the predictor pool itself (a gRPC target), when the
# gateway is configured to say (FITYARD_PUBLIC_PREDICT_ADDRESS). The gateway
# names it too (services/gateway/predictions.py; the client imports nothing
# of the server, nor the server the client's private modules); the stack
# test of the route fails if the two differ.
ROUTE_HEADER = "fityard-predict-address"


def route_of(trailing_metadata) -> str:
    """The pool's address a gateway named in a call's trailing metadata, or ""."""
    for key, value in trailing_metadata or ():
        if key == ROUTE_HEADER:
            return value
    return ""


def request_for(model_id: str, rows, request_id: str = "") -> predictions_pb2.PredictRequest:
    """A PredictRequest for a DataFrame (Arrow IPC) or a sequence of dicts (Structs)."""
    request = predictions_pb2.PredictRequest(model_id=model_id, request_id=request_id)
    if is_dataframe(rows):
        request.arrow_ipc = _arrow_ipc(rows)
        return request
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
        raise TypeError(
            "rows must be a pandas DataFrame or a list of dicts (one per row, column name -> value), "
            f"not {type(rows).__name__}"
        )
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"rows[{i}] must be a dict of column name -> value, not {type(row).__name__}"
            )
        struct = request.rows.add()
        try:
            struct.update({str(name): _plain(value) for name, value in row.items()})
        except (TypeError, ValueError) as exc:
            raise invalid_argument(
                f"rows[{i}]", f"holds a value that is not a number, text, boolean or None: {exc}"
            ) from None
    return request


def answer_of(response: predictions_pb2.PredictResponse, rows):
    """The answer in the shape the rows were sent in (see the module's doc)."""
    if response.arrow_ipc:
        require_data("predictions as a DataFrame")
        import pyarrow as pa

        frame = pa.ipc.open_stream(response.arrow_ipc).read_all().to_pandas()
        if is_dataframe(rows) and len(frame) == len(rows):
            frame.index = rows.index
        return frame
    classes = [label_of(value) for value in response.classes]
    return [
        Prediction(
            label=label_of(label),
            probabilities=dict(zip(classes, row.values, strict=True)),
        )
        for label, row in zip(response.labels, response.probabilities, strict=True)
    ]


def _arrow_ipc(frame) -> bytes:
    require_data("a DataFrame of rows")
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _plain(value: Any) -> Any:
    """A cell as protobuf's Struct takes it: numpy scalars as Python ones,
    NaN as None (missing)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
