"""Progress reports: at most one per interval, the newest one sent, nothing
after the job ended (services/trainer/progress.py)."""

from __future__ import annotations

import asyncio

from services.trainer.progress import ProgressThrottle


def test_reports_are_thinned_to_the_newest_one_per_interval():
    sent = []

    async def send(fraction, message):
        sent.append((round(asyncio.get_running_loop().time(), 2), fraction, message))

    async def scenario():
        throttle = ProgressThrottle(send, interval=0.2)
        for i in range(10):  # ten rounds in 0.1 s: none goes out at once
            await throttle.offer(i / 10, f"round {i}")
            await asyncio.sleep(0.01)
        assert sent == []
        await asyncio.sleep(0.2)  # the interval has passed: the newest is sent
        assert [(f, m) for _, f, m in sent] == [(0.9, "round 9")]
        await asyncio.sleep(0.25)
        await throttle.offer(0.95, "saving")  # a quiet interval later: sent at once
        assert [m for _, _, m in sent] == ["round 9", "saving"]
        await throttle.offer(0.97, "storing")  # waits...
        throttle.close()  # ...and is dropped when the job ends
        await asyncio.sleep(0.3)
        await throttle.offer(0.99, "late")  # a worker still reporting while it is stopped
        await asyncio.sleep(0.3)
        assert [m for _, _, m in sent] == ["round 9", "saving"]

    asyncio.run(scenario())
