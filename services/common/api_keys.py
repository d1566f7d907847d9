"""Who is calling: API keys, each belonging to a tenant.

A key is a random token (`fityard keys mint TENANT`); the gateway keeps only
its SHA-256, in the keys file (FITYARD_API_KEYS_FILE: one `TENANT SHA256`
per line, `#` comments), which it reads again when the file changes, so a
key is added or revoked (rotated: mint the new one, hand it out, delete the
old line) without a restart. A client sends `authorization: Bearer KEY` with
each call; a call to fityard.v1 without one, or with one the file does not
hold, is refused with UNAUTHENTICATED before its handler runs (an
unauthenticated upload takes no transfer slot). Health checks and
reflection stay open: they show nothing of anyone's data.

The tenant a key belongs to is the caller's for the call (`current_tenant`,
read by context.tenant_of): every record and object key starts with it, so
another tenant's ids are simply not found.

Without a keys file the gateway runs open, every caller the default tenant:
allowed only when it listens on loopback (`fityard up`), and said when it
starts (services/gateway/__main__.py: check_exposure).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc

from .config import DEFAULT_TENANT
from .grpc_handlers import around, refusing
from .internal_auth import is_loopback

log = logging.getLogger(__name__)

# The services a key is needed for (health and reflection are open).
PROTECTED_PREFIX = "/fityard.v1."
KEY_PREFIX = "fy_"
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default=DEFAULT_TENANT)


def current_tenant() -> str:
    """The tenant of the call being handled (the default one when open)."""
    return _tenant.get()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mint(tenant: str, keys_file: str | os.PathLike) -> str:
    """A new key for `tenant`, its digest appended to `keys_file` (created
    with owner-only permissions); the key itself is returned, once, and
    stored nowhere."""
    if not TENANT_NAME.fullmatch(tenant):
        raise ValueError(
            f"tenant {tenant!r}: use 1 to 63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    path = Path(keys_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(f"{tenant} {digest(key)}\n")
    return key


class ApiKeys:
    """The keys file, read again whenever it changes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._tenants: dict[str, str] = {}  # digest -> tenant
        self._load()

    def tenant(self, key: str) -> str | None:
        """The tenant of `key`, or None if the file does not hold it."""
        self._load()
        wanted = digest(key)
        for known, tenant in self._tenants.items():
            if hmac.compare_digest(known, wanted):
                return tenant
        return None

    def _load(self) -> None:
        stat = self.path.stat()  # a keys file that vanished refuses every call
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        tenants = {}
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if (
                len(parts) != 2
                or not TENANT_NAME.fullmatch(parts[0])
                or not re.fullmatch(r"[0-9a-f]{64}", parts[1])
            ):
                log.error("%s line %d is not 'TENANT SHA256': ignored", self.path, number)
                continue
            tenants[parts[1]] = parts[0]
        self._tenants, self._stamp = tenants, stamp
        log.info("API keys: %d key(s) of %d tenant(s)", len(tenants), len(set(tenants.values())))


def _key_of(metadata) -> str:
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


def guards(config, listen: str, service: str) -> list[grpc.aio.ServerInterceptor]:
    """A public service's authentication (the gateway's, a predictor's), from
    its config: an AuthInterceptor over the keys file, or nothing (open)
    when it listens on loopback only. Exposed beyond loopback without keys,
    it refuses to start, saying how to mint one."""
    if config.api_keys_file:
        keys = ApiKeys(config.api_keys_file)  # unreadable: the service does not start
        return [AuthInterceptor(keys)]
    if not is_loopback(listen):
        raise SystemExit(
            f"the {service} listens beyond this machine ({listen}) without API keys: set "
            "FITYARD_API_KEYS_FILE to a keys file (`fityard keys mint TENANT --file FILE` "
            "makes one), or listen on localhost to run open"
        )
    log.warning(
        "running open, without API keys: every caller on this machine is tenant %r "
        "(set FITYARD_API_KEYS_FILE to require keys)",
        DEFAULT_TENANT,
    )
    return []


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for a fityard.v1 call without a valid key; otherwise
    the handler runs with the key's tenant as the current one."""

    def __init__(self, keys: ApiKeys):
        self.keys = keys

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or not details.method.startswith(PROTECTED_PREFIX):
            return handler
        key = _key_of(details.invocation_metadata)
        try:
            tenant = self.keys.tenant(key) if key else None
        except OSError:
            log.error("the API keys file %s cannot be read: refusing calls", self.keys.path)
            tenant = None
        if tenant is None:
            return refusing(handler, grpc.StatusCode.UNAUTHENTICATED, BAD_KEY if key else NO_KEY)
        return around(handler, lambda _context: _as(tenant))


@contextlib.contextmanager
def _as(tenant: str) -> Iterator[None]:
    token = _tenant.set(tenant)
    try:
        yield
    finally:
        _tenant.reset(token)


NO_KEY = (
    "this fityard needs an API key: send it as 'authorization: Bearer KEY' "
    "(Client(api_key=...), FITYARD_API_KEY or fityard --api-key); its operator mints one "
    "with `fityard keys mint TENANT`"
)
BAD_KEY = (
    "the API key is not one this fityard knows (mistyped, or revoked): check "
    "FITYARD_API_KEY / --api-key, or ask its operator for a new one"
)
