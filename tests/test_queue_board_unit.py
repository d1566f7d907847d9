"""Which queued jobs' places are rewritten (services/scheduler/queue_board.py):
the front exactly, the rest when they moved a tenth, not more often than
every REWRITE_SECONDS."""

from __future__ import annotations

from services.scheduler.queue_board import REWRITE_SECONDS, worth_writing


def test_a_new_place_is_written_and_the_front_is_kept_exact():
    assert worth_writing(None, (150, 60.0), now=0.0)
    assert worth_writing((5, 5.0, 0.0), (4, 5.0), now=0.1)
    assert not worth_writing((4, 5.0, 0.0), (4, 5.0), now=0.1)


def test_far_places_wait_for_a_tenths_move_and_the_rewrite_interval():
    shown = (150, 60.0, 0.0)
    later = REWRITE_SECONDS + 0.1
    assert not worth_writing(shown, (140, 60.0), now=later)  # moved less than a tenth
    assert worth_writing(shown, (130, 60.0), now=later)
    assert not worth_writing(shown, (130, 60.0), now=1.0)  # too soon after the last write
    assert worth_writing(shown, (148, 70.0), now=later)  # the estimate moved a step
