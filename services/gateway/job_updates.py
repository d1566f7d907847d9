"""Every change to a job record, seen once by the gateway and shared by all
its callers: WatchJob streams and GetJob.

One ordered consumer on the jobs bucket's stream, from the moment the
gateway starts (deliver-new: nothing is replayed), instead of a KV watch
(a consumer created and deleted on the NATS server) per WatchJob call and a
KV read per GetJob. Under load (a client waiting on each of hundreds of jobs,
dashboards polling GetJob) those were most of the gateway's and
nats-server's work.

- Listeners: a WatchJob stream registers for its job's key *before* reading
  the record, so no change falls between the read and the updates; changes
  at or below the revision it read are skipped.
- Records last seen: up to CACHED_RECORDS, newest use kept (LRU), each with
  its KV revision. A record enters from the stream or from a read (only if
  nothing newer is known), so a cached record is the latest unless the
  stream has not delivered a newer one yet (milliseconds: a GetJob answered
  then is the answer it would have got a moment earlier).
- Never trusted blindly: a cached record not confirmed (by the stream or a
  read) for TRUST_SECONDS is read again, and a watcher that heard nothing for
  as long reads its record; so if the stream stalls (its bucket deleted and
  recreated under the gateway, say), answers are at most that late. The
  cache is dropped whenever the NATS connection was re-established.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

CACHED_RECORDS = 10_000  # about 5 MB of job records
TRUST_SECONDS = 2.0
_DELETED = {"DEL", "PURGE"}

# (revision, record bytes or None for a deleted record)
Version = tuple[int, bytes | None]


class JobUpdates:
    def __init__(self, nc: NATS, kv: KeyValue, bucket: str):
        self._nc = nc
        self._kv = kv
        self._prefix = f"$KV.{bucket}."
        self._stream = f"KV_{bucket}"
        self._listeners: dict[str, set[asyncio.Queue]] = {}
        # key -> (version, when it was last confirmed: monotonic seconds)
        self._cache: OrderedDict[str, tuple[Version, float]] = OrderedDict()
        self._reconnects = 0
        self._sub = None

    async def start(self) -> JobUpdates:
        self._reconnects = self._nc.stats["reconnects"]
        self._sub = await self._nc.jetstream().subscribe(
            f"{self._prefix}>",
            stream=self._stream,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone
                await self._sub.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        key = msg.subject[len(self._prefix) :]
        operation = (msg.headers or {}).get("KV-Operation")
        version = (msg.metadata.sequence.stream, None if operation in _DELETED else msg.data)
        self._remember(key, version)
        for queue in self._listeners.get(key, ()):
            queue.put_nowait(version)

    def _remember(self, key: str, version: Version) -> None:
        known = self._cache.get(key)
        now = time.monotonic()
        if known is not None and known[0][0] > version[0]:
            return
        self._cache[key] = (version, now)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHED_RECORDS:
            self._cache.popitem(last=False)

    def _fresh(self) -> None:
        """Forget everything if the connection was re-established since."""
        reconnects = self._nc.stats["reconnects"]
        if reconnects != self._reconnects:
            log.info("NATS reconnected: the gateway's cached job records are dropped")
            self._cache.clear()
            self._reconnects = reconnects

    async def read(self, key: str) -> Version | None:
        """The record's latest known version (None: no such key), from the
        cache or read from the bucket."""
        self._fresh()
        known = self._cache.get(key)
        if known is not None and time.monotonic() - known[1] < TRUST_SECONDS:
            self._cache.move_to_end(key)
            version = known[0]
            return version if version[1] is not None else None
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        self._remember(key, (entry.revision, entry.value))
        return entry.revision, entry.value

    async def refresh(self, key: str) -> None:
        """Read the record again (after a command through this gateway
        changed it: its caller's next GetJob must show the change even if
        the stream has not delivered it yet)."""
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError as exc:  # KeyDeletedError carries the delete marker
            marker = getattr(exc, "entry", None)
            if marker is not None:
                self._remember(key, (marker.revision, None))
            return
        self._remember(key, (entry.revision, entry.value))

    @contextlib.contextmanager
    def listen(self, key: str) -> Iterator[asyncio.Queue]:
        """A queue of every later version of `key`, for the block."""
        queue: asyncio.Queue = asyncio.Queue()
        self._listeners.setdefault(key, set()).add(queue)
        try:
            yield queue
        finally:
            listeners = self._listeners[key]
            listeners.discard(queue)
            if not listeners:
                del self._listeners[key]
