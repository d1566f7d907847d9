"""The internal hop's credential: the scheduler takes commands only from the
gateway, which proves itself with a shared token (FITYARD_INTERNAL_TOKEN)
in each call's metadata. The scheduler trusts the tenant the gateway sends,
so nothing else may reach its port: a call without the token, or with
another, is UNAUTHENTICATED before its handler runs. Health checks and
reflection stay open (probes use them).

Without a token the scheduler runs open, which it allows only when it
listens on loopback (`fityard up`); compose and the Helm chart give both
services the same token from a secret.
"""

from __future__ import annotations

import hmac
import logging

import grpc

from .grpc_handlers import refusing

log = logging.getLogger(__name__)

HEADER = "x-fityard-internal-token"
PROTECTED_PREFIX = "/services.internal.v1."
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(listen: str) -> bool:
    """True if `host:port` is reachable from this machine only."""
    return listen.rpartition(":")[0] in LOOPBACK_HOSTS


class TokenCheck(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for an internal call without the shared token."""

    def __init__(self, token: str):
        self._token = token.encode()

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or not details.method.startswith(PROTECTED_PREFIX):
            return handler
        sent = next((v for k, v in details.invocation_metadata or () if k == HEADER), "")
        if isinstance(sent, str) and hmac.compare_digest(sent.encode(), self._token):
            return handler
        log.warning("refused an internal call to %s without the right token", details.method)
        return refusing(
            handler,
            grpc.StatusCode.UNAUTHENTICATED,
            "internal calls need FITYARD_INTERNAL_TOKEN: give the gateway and the scheduler "
            "the same one",
        )


class TokenSend(grpc.aio.UnaryUnaryClientInterceptor):
    """Puts the shared token in each call's metadata (the gateway's channel
    to the scheduler)."""

    def __init__(self, token: str):
        self._token = token

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()), (HEADER, self._token))
        return await continuation(client_call_details._replace(metadata=metadata), request)


def scheduler_guards(config) -> list[grpc.aio.ServerInterceptor]:
    """The scheduler's check of its callers, from its config; stops it when
    it would listen beyond loopback with no token."""
    if config.internal_token:
        return [TokenCheck(config.internal_token)]
    if not is_loopback(config.scheduler_listen):
        raise SystemExit(
            f"the scheduler listens beyond this machine ({config.scheduler_listen}) without "
            "FITYARD_INTERNAL_TOKEN: give it and the gateway the same random token "
            "(e.g. `openssl rand -hex 24`), or listen on localhost"
        )
    return []


def gateway_sends(config) -> list[grpc.aio.UnaryUnaryClientInterceptor]:
    """What the gateway's channel to the scheduler adds to each call."""
    return [TokenSend(config.internal_token)] if config.internal_token else []
