"""gRPC statuses as a client receives them, without a server: a failed call
built from a status (code, message, and the google.rpc details in its
trailing metadata), and what the SDK makes of a server's error."""

from __future__ import annotations

import grpc

from fityard import FityardError
from fityard._errors import error_from
from services.common.errors import ApiError

ADDRESS = "localhost:50051"


class FailedCall(grpc.RpcError, grpc.Call):
    """A failed call as grpcio raises it: code, details, trailing metadata."""

    def __init__(self, status: grpc.Status | None = None, **fields):
        self._code = status.code if status else fields.get("code", grpc.StatusCode.UNKNOWN)
        self._details = status.details if status else fields.get("details", "")
        self._trailing = status.trailing_metadata if status else fields.get("trailing", ())

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):
        return ()

    # grpc.Call's other abstract methods: a finished call.
    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


def seen_by_client(error: ApiError, address: str = ADDRESS) -> FityardError:
    """The exception the SDK raises when the server answers with `error`."""
    return error_from(FailedCall(error.to_status()), address)
