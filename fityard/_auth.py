"""How the SDK reaches a gateway: over TLS when asked (server verified
against a CA, optionally with a client certificate for mTLS), with the
caller's API key on every call (`authorization: Bearer KEY` metadata, added
by a channel interceptor so no call can leave without it)."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import grpc

API_KEY_ENV = "FITYARD_API_KEY"
TLS_ENV = "FITYARD_TLS"  # "1" / "true": TLS with the system's CAs, or FITYARD_CA_FILE's
CA_FILE_ENV = "FITYARD_CA_FILE"
CERT_FILE_ENV = "FITYARD_CLIENT_CERT_FILE"
KEY_FILE_ENV = "FITYARD_CLIENT_KEY_FILE"


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


class BearerKey(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, key: str):
        self._header = ("authorization", f"Bearer {key}")

    def _with_key(self, details: grpc.ClientCallDetails) -> _Details:
        metadata = [*(details.metadata or ()), self._header]
        return _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_key(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_key(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_key(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_key(details), requests)


def with_key(channel: grpc.Channel, key: str) -> grpc.Channel:
    """`channel`, every call on it carrying `key`."""
    return grpc.intercept_channel(channel, BearerKey(key)) if key else channel


def tls_credentials(
    tls: bool | None, ca_file: str | None, cert_file: str | None, key_file: str | None
) -> grpc.ChannelCredentials | None:
    """The channel's TLS credentials, None for plaintext. Each argument left
    None is taken from its environment variable; giving a CA or a client
    certificate implies TLS."""
    ca_file = ca_file or os.environ.get(CA_FILE_ENV) or None
    cert_file = cert_file or os.environ.get(CERT_FILE_ENV) or None
    key_file = key_file or os.environ.get(KEY_FILE_ENV) or None
    if tls is None:
        tls = os.environ.get(TLS_ENV, "").lower() in ("1", "true", "yes") or bool(
            ca_file or cert_file
        )
    if not tls:
        return None
    if bool(cert_file) != bool(key_file):
        raise ValueError("a client certificate needs both cert_file and key_file")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        private_key=Path(key_file).read_bytes() if key_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
    )
