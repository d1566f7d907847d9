"""PredictionService through the gateway: every call passed on, as it came,
to the predictor pool (FITYARD_PREDICTOR_ADDRESS), so that one address
serves the whole API (grpcurl, the SDK's default).

The messages are not decoded here: the request's bytes go to a predictor
and its answer's bytes (or its status, details included) come back. The
caller's API key goes along and the predictor checks it too (it serves
callers that reach it directly, skipping this hop, as well), so the
gateway adds no trust of its own.

The pool is reached over CHANNELS channels, used in turn, each spreading
its calls over every address of the pool's name (round_robin): a DNS name
of several predictors (compose, Kubernetes' headless Service) or the
`ipv4:A,B` list of an embedded stack's predictors, a port each.

Passing calls on costs a second gRPC server and client per call (0.61 of
the pool's rate on 2 cores: README, Performance). Where callers can reach
the pool themselves (FITYARD_PUBLIC_PREDICT_ADDRESS; `fityard up` sets it),
each Predict answered says where, in its trailing metadata
(ROUTE_HEADER), as HTTP's Alt-Svc does: the SDK sends its next calls there
and comes back here if that address fails it.
"""

from __future__ import annotations

import itertools
import json
from typing import NoReturn

import grpc

from fityard.v1 import predictions_pb2
from services.common.runtime import MAX_MESSAGE_BYTES
from services.common.telemetry import grpc_client_interceptors

SERVICE = predictions_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name
CHANNELS = 4
# A predictor that is restarting is waited for this long at most (the
# caller's own deadline, if shorter, wins).
DEADLINE_SECONDS = 30.0
# Metadata a hop sets itself: not passed on (the trace context is the
# gateway's own client span's, set by its interceptor).
_HOP_HEADERS = ("traceparent", "tracestate", "grpc-", ":", "user-agent", "content-type", "te")
# The trailing metadata that names the pool's public address: the SDK's
# fityard._predictions.ROUTE_HEADER (test_online_predict checks they meet).
ROUTE_HEADER = "fityard-predict-address"


class PredictionForwarder:
    def __init__(self, address: str, public_address: str = ""):
        self._route = ((ROUTE_HEADER, public_address),) if public_address else ()
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
            # a connection of its own per channel (not one shared by all four)
            ("grpc.use_local_subchannel_pool", 1),
        ]
        self.address = address
        self._channels = [
            grpc.aio.insecure_channel(
                address, options=options, interceptors=grpc_client_interceptors()
            )
            for _ in range(CHANNELS)
        ]
        self._unary = itertools.cycle(
            [channel.unary_unary(f"/{SERVICE}/Predict") for channel in self._channels]
        )
        self._streams = itertools.cycle(
            [channel.stream_stream(f"/{SERVICE}/StreamPredict") for channel in self._channels]
        )

    def handler(self) -> grpc.GenericRpcHandler:
        """The gateway's PredictionService: bytes in, bytes out."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Predict": grpc.unary_unary_rpc_method_handler(self.predict),
                "StreamPredict": grpc.stream_stream_rpc_method_handler(self.stream),
            },
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def predict(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            answer = await next(self._unary)(
                request,
                metadata=_passed_on(context),
                timeout=_timeout(context),
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            await _relay(context, exc)
        if self._route:
            context.set_trailing_metadata(self._route)
        return answer

    async def stream(self, request_iterator, context: grpc.aio.ServicerContext):
        call = next(self._streams)(
            request_iterator,
            metadata=_passed_on(context),
            timeout=_timeout(context),
            wait_for_ready=True,
        )
        try:
            async for answer in call:
                yield answer
        except grpc.aio.AioRpcError as exc:
            await _relay(context, exc)


def _passed_on(context: grpc.aio.ServicerContext) -> tuple:
    return tuple(
        (key, value)
        for key, value in context.invocation_metadata() or ()
        if not key.startswith(_HOP_HEADERS)
    )


def _timeout(context: grpc.aio.ServicerContext) -> float:
    remaining = context.time_remaining()
    return DEADLINE_SECONDS if remaining is None else min(remaining, DEADLINE_SECONDS)


async def _relay(context: grpc.aio.ServicerContext, exc: grpc.aio.AioRpcError) -> NoReturn:
    """The predictor's status, as it gave it (its google.rpc details ride in
    the trailing metadata); a pool that cannot be reached, said so."""
    remaining = context.time_remaining()
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and (remaining is None or remaining > 0):
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            "no predictor answered in time (FITYARD_PREDICTOR_ADDRESS of the gateway): "
            "is the predictor pool running? Try again shortly",
        )
    details = tuple(
        (key, value)
        for key, value in exc.trailing_metadata() or ()
        if not key.startswith("grpc-") or key == "grpc-status-details-bin"
    )
    await context.abort(exc.code(), exc.details() or "", details)
