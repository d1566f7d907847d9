"""Retrying what fails for a moment (services/common/retry.py): a NATS blip
is waited out with a growing pause, up to a time limit, then the last error
is raised; an error retrying cannot mend is raised at once."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import nats.errors
import pytest

from services.common import retry
from services.common.retry import retrying


class Clock:
    """A fake clock: sleeping moves it on at once."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(retry, "time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(retry, "asyncio", SimpleNamespace(sleep=clock.sleep))
    return clock


def failing(times: int, error: BaseException, result="done"):
    """A call that raises `error` `times` times, then returns `result`."""
    calls = []

    async def call():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return call, calls


def test_a_blip_is_waited_out_and_the_result_returned(clock, caplog):
    call, calls = failing(3, nats.errors.NoRespondersError())
    with caplog.at_level(logging.WARNING, logger=retry.log.name):
        assert asyncio.run(retrying(call, "publishing job_1")) == "done"
    assert len(calls) == 4
    assert clock.sleeps == [0.1, 0.2, 0.4]  # each pause twice the last
    assert [r.getMessage().split(" failed")[0] for r in caplog.records] == ["publishing job_1"] * 3
    assert "retrying in 0.1 s" in caplog.records[0].getMessage()


def test_the_pause_grows_to_at_most_max_delay(clock):
    call, _ = failing(10, TimeoutError())
    asyncio.run(retrying(call, "x", within=1000, first_delay=1, max_delay=5))
    assert clock.sleeps == [1, 2, 4, 5, 5, 5, 5, 5, 5, 5]


def test_it_gives_up_within_the_time_limit_raising_the_last_error(clock):
    error = nats.errors.ConnectionReconnectingError()
    call, calls = failing(1000, error)
    with pytest.raises(nats.errors.ConnectionReconnectingError) as raised:
        asyncio.run(retrying(call, "x", within=10, first_delay=0.5, max_delay=2))
    assert raised.value is error
    assert clock.now <= 10  # never sleeps past the limit
    assert len(calls) == len(clock.sleeps) + 1 > 1


def test_an_error_retrying_cannot_mend_is_raised_at_once(clock):
    call, calls = failing(1, nats.errors.MaxPayloadError())  # a message over the size limit
    with pytest.raises(nats.errors.MaxPayloadError):
        asyncio.run(retrying(call, "x"))
    assert (len(calls), clock.sleeps) == (1, [])


def test_what_counts_as_a_blip_can_be_narrowed(clock):
    call, calls = failing(1, OSError("disk"))
    with pytest.raises(OSError):
        asyncio.run(retrying(call, "x", transient=(TimeoutError,)))
    assert len(calls) == 1


def test_a_call_that_works_is_called_once(clock):
    call, calls = failing(0, TimeoutError())
    assert asyncio.run(retrying(call, "x")) == "done"
    assert (len(calls), clock.sleeps) == (1, [])


def test_nats_blips_are_transient_and_bugs_are_not():
    for blip in (
        nats.errors.TimeoutError,
        nats.errors.NoRespondersError,
        nats.errors.ConnectionClosedError,
        nats.errors.StaleConnectionError,
        ConnectionRefusedError,
    ):
        assert issubclass(blip, retry.TRANSIENT), blip
    for bug in (KeyError, ValueError, TypeError, nats.errors.MaxPayloadError):
        assert not issubclass(bug, retry.TRANSIENT), bug
