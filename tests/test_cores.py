"""Core leases: trainers sharing a machine never use more threads than cores."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from services.trainer.cores import CoreLeases


def test_a_lone_holder_takes_every_core_and_others_wait(tmp_path):
    a, b = CoreLeases(tmp_path, 4), CoreLeases(tmp_path, 4)
    assert a.try_take_free(4) == 4
    assert b.try_take_free(1) == 0
    a.release_extras()
    assert a.held == 1
    assert b.try_take_free(4) == 3
    assert a.held + b.held == 4
    a.release_all()
    b.release_all()
    assert CoreLeases(tmp_path, 4).try_take_free(4) == 4


def test_take_one_waits_and_heartbeats_until_a_core_frees(tmp_path):
    holder, waiter = CoreLeases(tmp_path, 1), CoreLeases(tmp_path, 1)
    assert holder.try_take_free(1) == 1
    beats = []

    async def scenario():
        async def beat():
            beats.append(1)

        waiting = asyncio.create_task(waiter.take_one(beat, every=0.05, give_up=lambda: False))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        holder.release_all()
        await asyncio.wait_for(waiting, 2)

    asyncio.run(scenario())
    assert waiter.held == 1 and len(beats) >= 3


def test_take_one_gives_up_when_told(tmp_path):
    holder, waiter = CoreLeases(tmp_path, 1), CoreLeases(tmp_path, 1)
    holder.try_take_free(1)
    stop = []

    async def scenario():
        async def beat():
            stop.append(1)  # give up after the first heartbeat

        return await waiter.take_one(beat, every=0.05, give_up=lambda: bool(stop))

    assert asyncio.run(scenario()) is False
    assert waiter.held == 0


def test_a_dead_process_frees_its_cores(tmp_path):
    code = (
        "import sys, os; from services.trainer.cores import CoreLeases; "
        f"c = CoreLeases({str(tmp_path)!r}, 2); assert c.try_take_free(2) == 2; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert CoreLeases(tmp_path, 2).try_take_free(2) == 2


def test_lock_files_say_which_lane_holds_the_cores(tmp_path):
    # A small job waits for a core only while small jobs hold them all; a
    # default-lane holder (a long fit) means it runs beside it at once.
    small, other, reader = CoreLeases(tmp_path, 2), CoreLeases(tmp_path, 2), CoreLeases(tmp_path, 2)
    small.lane = other.lane = "small"
    assert small.try_take_free(1) == 1 and other.try_take_free(1) == 1
    assert reader.all_held_for("small")
    other.release_all()
    other.lane = "default"
    assert other.try_take_free(1) == 1
    assert not reader.all_held_for("small")
    small.release_all()
    other.release_all()
