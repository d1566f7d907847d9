"""services/common/health.py without a stack: what makes a service
NOT_SERVING, and that it serves again once that is over."""

from __future__ import annotations

import asyncio
import threading

from services.common.health import Health


class FakeNats:
    def __init__(self):
        self.is_connected = True
        self.is_reconnecting = False
        self.answers = True

    async def request(self, subject, payload, timeout):
        assert subject == "$JS.API.INFO"
        if not self.answers:
            await asyncio.sleep(timeout)
            raise asyncio.TimeoutError
        return b"{}"


class FakeStore:
    def __init__(self):
        self.error: Exception | None = None
        self.hang = threading.Event()
        self.hang.set()
        self.calls = 0

    def ensure_ready(self):
        self.calls += 1
        self.hang.wait()
        if self.error is not None:
            raise self.error


def _health():
    published: list[bool] = []

    async def publish(serving: bool) -> None:
        published.append(serving)

    return Health(asyncio.Event(), publish), published


async def _settled():
    for _ in range(5):
        await asyncio.sleep(0)


def test_nats_down_or_silent_is_not_serving_and_back_is_serving():
    async def main():
        health, published = _health()
        nc = FakeNats()
        await health.check_nats(nc)
        await health.publish()
        assert health.serving and published == [True]
        nc.is_connected, nc.is_reconnecting = False, True
        await health.check_nats(nc)
        await _settled()
        assert not health.serving and published == [True, False]
        assert "reconnecting" in health.problems()["NATS"]
        nc.is_connected, nc.is_reconnecting, nc.answers = True, False, False
        await health.check_nats(nc, timeout=0.01)
        assert "JetStream did not answer" in health.problems()["NATS"]
        nc.answers = True
        await health.check_nats(nc)
        await _settled()
        assert health.serving and published == [True, False, True]

    asyncio.run(main())


def test_a_failing_or_hanging_store_is_not_serving_and_hangs_are_not_doubled():
    async def main():
        health, published = _health()
        store = FakeStore()
        await health.check_store(store)
        assert health.serving
        store.error = OSError("no route to host")
        await health.check_store(store)
        assert "no route to host" in health.problems()["store"]
        store.error = None
        store.hang.clear()
        await health.check_store(store, timeout=0.05)
        await health.check_store(store, timeout=0.05)
        assert "no answer" in health.problems()["store"]
        assert store.calls == 3  # the hanging check is waited for, not started again
        store.hang.set()
        await health.check_store(store)
        assert health.serving

    asyncio.run(main())


def test_a_core_loop_that_ends_makes_it_not_serving_unless_the_service_stops():
    async def main():
        health, published = _health()

        async def fails():
            raise RuntimeError("lost the stream")

        loop = asyncio.create_task(fails(), name="event folding")
        health.watch_loop(loop)
        await asyncio.gather(loop, return_exceptions=True)
        await _settled()
        assert health.problems() == {"event folding": "failed: lost the stream"}
        assert published == [False]

        calm, _ = _health()
        calm.stop.set()

        async def returns():
            return None

        quiet = asyncio.create_task(returns(), name="job loop")
        calm.watch_loop(quiet)
        await quiet
        await _settled()
        assert calm.serving

    asyncio.run(main())


def test_run_checks_until_the_service_stops():
    async def main():
        health, published = _health()
        nc = FakeNats()
        running = asyncio.create_task(health.run(nc=nc, store=FakeStore(), nats_every=0.01))
        await asyncio.sleep(0.05)
        nc.is_connected = False
        await asyncio.sleep(0.05)
        assert not health.serving
        nc.is_connected = True
        await asyncio.sleep(0.05)
        assert health.serving
        health.stop.set()
        await asyncio.wait_for(running, 1)
        assert published == [True, False, True]

    asyncio.run(main())
