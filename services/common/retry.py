"""Retrying calls to NATS (and anything else) that fail for a moment.

A NATS server restarting, a JetStream leader election or a slow disk makes
calls time out or find no responder for seconds; none of that may fail a
job or kill a service. Calls on a job's path go through `retrying`, which
backs off exponentially and gives up only after `within` seconds, raising
the last error for the caller to handle (nak the message, report
NOT_SERVING). Errors that retrying cannot mend (a message over the size
limit, a bad request) are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import nats.js.errors

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a NATS blip looks like from nats-py.
TRANSIENT: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError,  # nats.errors.TimeoutError is one
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
    nats.js.errors.NoStreamResponseError,  # the stream is gone until it is recreated
    OSError,
)


async def retrying(
    call: Callable[[], Awaitable[T]],
    what: str,
    *,
    within: float = 60.0,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> T:
    """`await call()`, again after a growing pause while it raises a
    transient error, for at most `within` seconds in all."""
    delay = first_delay
    give_up = time.monotonic() + within
    while True:
        try:
            return await call()
        except transient as exc:
            if time.monotonic() + delay > give_up:
                raise
            log.warning(
                "%s failed (%s: %s); retrying in %.1f s", what, type(exc).__name__, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
