"""Health that tells the truth: SERVING only while the service can do its work.

A service is NOT_SERVING on grpc.health.v1 while any of these holds, and
SERVING again as soon as none does:

- NATS is unreachable: the connection is down (nats-py reconnecting), or a
  JetStream API request (`$JS.API.INFO`, a few hundred bytes) gets no answer
  within NATS_TIMEOUT_SECONDS: a hung or overloaded nats-server keeps its
  TCP connections open, and nats-py notices only after its ping interval
  (minutes), so the request is what finds it. Asked every NATS_EVERY_SECONDS.
- the store is unreachable: its `ensure_ready` (S3: one HEAD of the bucket;
  local: a mkdir of an existing directory) fails or takes longer than
  STORE_TIMEOUT_SECONDS; asked every STORE_EVERY_SECONDS, one at a time.
- a core loop (a task given to `watch_loop`) has ended or failed.

Polling `nc.is_connected` rather than nats-py's disconnected/reconnected
callbacks keeps this independent of how each service's context opens its
connection, and the request covers what the callbacks cannot see.
(`nc.flush(timeout)` is not used: a flush that times out leaves a cancelled
future behind, and the late PONG then stops nats-py's read loop.)

Each change is logged (WARNING when it stops serving, INFO when it serves
again), so a service without a gRPC server still shows its health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

NATS_EVERY_SECONDS = 1.0
NATS_TIMEOUT_SECONDS = 5.0
STORE_EVERY_SECONDS = 10.0
STORE_TIMEOUT_SECONDS = 10.0


class Health:
    """The parts of a service that are down, and what its health says.

    `publish(serving)` is called (serialised, with the current state) each
    time the answer changes, e.g. `GrpcServer.set_serving`. Once `stop` is
    set the service is stopping: loops ending then are no news."""

    def __init__(
        self, stop: asyncio.Event, publish: Callable[[bool], Awaitable[None]] | None = None
    ):
        self.stop = stop
        self._publish_to = publish
        self._problems: dict[str, str] = {}
        self._published: bool | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._store_check: asyncio.Future | None = None

    @property
    def serving(self) -> bool:
        return not self._problems

    def problems(self) -> dict[str, str]:
        """What is down: {part: why}."""
        return dict(self._problems)

    def set_problem(self, part: str, why: str | None) -> None:
        """`part` is down because `why`; None: it is fine (again)."""
        was = self.serving
        if why is None:
            if self._problems.pop(part, None) is not None:
                log.info("%s is back", part)
        else:
            if part not in self._problems:
                log.warning("%s is down: %s", part, why)
            self._problems[part] = why
        if self.serving != was:
            if self.serving:
                log.info("health: SERVING again")
            else:
                log.warning("health: NOT_SERVING (%s)", self._describe())
            self._spawn(self.publish())

    def _describe(self) -> str:
        return "; ".join(f"{part}: {why}" for part, why in self._problems.items())

    async def publish(self) -> None:
        """Tell the publisher the current state, if it changed."""
        if self._publish_to is None:
            return
        async with self._lock:
            serving = self.serving
            if serving != self._published:
                await self._publish_to(serving)
                self._published = serving

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what is watched --------------------------------------------------------

    def watch_loop(self, task: asyncio.Task, name: str | None = None) -> None:
        """The service is down once `task` (a loop meant to run until the
        service stops) ends, by returning, failing or being cancelled."""
        part = name or task.get_name()

        def ended(done: asyncio.Task) -> None:
            if self.stop.is_set() and not done.cancelled() and done.exception() is None:
                return  # stopped because the service stops
            if done.cancelled():
                why = "cancelled"
            elif done.exception() is not None:
                why = f"failed: {done.exception()}"
            else:
                why = "stopped"
            self.set_problem(part, why)

        task.add_done_callback(ended)

    async def check_nats(self, nc, timeout: float = NATS_TIMEOUT_SECONDS) -> None:
        """One look at NATS: connected, and JetStream answers."""
        if not nc.is_connected:
            self.set_problem(
                "NATS", "not connected (reconnecting)" if nc.is_reconnecting else "not connected"
            )
            return
        try:
            await nc.request("$JS.API.INFO", b"", timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - any failure: not reachable
            self.set_problem("NATS", f"JetStream did not answer ({type(exc).__name__}: {exc})")
            return
        self.set_problem("NATS", None)

    async def check_store(self, store, timeout: float = STORE_TIMEOUT_SECONDS) -> None:
        """One look at the store (in a thread; one at a time, see run)."""
        if self._store_check is None or self._store_check.done():
            self._store_check = asyncio.ensure_future(asyncio.to_thread(_store_ready, store))
        try:
            # A check that hangs is waited for by the next ones, not doubled.
            await asyncio.wait_for(asyncio.shield(self._store_check), timeout)
        except asyncio.TimeoutError:
            self.set_problem("store", f"no answer within {timeout:g} s")
            return
        except Exception as exc:  # noqa: BLE001 - any failure: not reachable
            self.set_problem("store", f"{type(exc).__name__}: {exc}")
            return
        self.set_problem("store", None)

    async def run(
        self,
        *,
        nc=None,
        store=None,
        nats_every: float = NATS_EVERY_SECONDS,
        store_every: float = STORE_EVERY_SECONDS,
    ) -> None:
        """Check NATS and the store periodically until the service stops."""
        await self.publish()
        checks = []
        if nc is not None:
            checks.append(self._every(nats_every, lambda: self.check_nats(nc)))
        if store is not None:
            checks.append(self._every(store_every, lambda: self.check_store(store)))
        await asyncio.gather(*checks)

    async def _every(self, seconds: float, check) -> None:
        while not self.stop.is_set():
            try:
                await check()
            except Exception:  # a health check must not end the checking
                log.exception("health check failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)


def _store_ready(store) -> None:
    """store.ensure_ready(), not traced (a health check every few seconds is
    not what a trace viewer should show)."""
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:  # the instrumentation package is not installed
        store.ensure_ready()
        return
    with suppress_instrumentation():
        store.ensure_ready()
