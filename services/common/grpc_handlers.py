"""What server interceptors do to a grpc.aio method handler, in one place:
find its behavior (one of four kinds), run it inside a context manager
(metrics, the caller's tenant), or replace it by an immediate refusal
(authentication)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager

import grpc


def behavior_attribute(handler: grpc.RpcMethodHandler) -> str:
    """unary_unary, unary_stream, stream_unary or stream_stream."""
    if handler.request_streaming:
        return "stream_stream" if handler.response_streaming else "stream_unary"
    return "unary_stream" if handler.response_streaming else "unary_unary"


def around(
    handler: grpc.RpcMethodHandler,
    enter: Callable[[grpc.aio.ServicerContext], AbstractContextManager],
) -> grpc.RpcMethodHandler:
    """The handler, its behavior run inside `enter(context)` (for a stream,
    until its last response is sent)."""
    attribute = behavior_attribute(handler)
    behavior = getattr(handler, attribute)
    if inspect.isasyncgenfunction(behavior):

        async def stream(request, context):
            with enter(context):
                async for response in behavior(request, context):
                    yield response

        return handler._replace(**{attribute: stream})

    async def call(request, context):
        with enter(context):
            return await behavior(request, context)

    return handler._replace(**{attribute: call})


def refusing(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler:
    """A handler of the same kind that answers `code` at once, reading
    nothing of the request."""

    async def refuse(request, context):
        await context.abort(code, message)

    return handler._replace(**{behavior_attribute(handler): refuse})
