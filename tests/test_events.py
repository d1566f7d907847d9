"""The trainer–scheduler protocol's rules (services/scheduler/attempts.py:
apply_event), pure logic, no processes: what a user sees in GetJob when
events arrive in order, late, twice, or from an attempt that no longer
counts. Every pair of record state and event kind is checked."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fityard.v1 import jobs_pb2
from services.common.jobs import FAILED_PROCESS_DIED
from services.internal.v1 import bus_pb2, records_pb2
from services.scheduler.attempts import KINDS, Change, apply_event, failure_reason

S = jobs_pb2
MAX_ATTEMPTS = 3

BODIES = {
    "started": lambda **f: bus_pb2.AttemptStarted(**f),
    "progress": lambda **f: bus_pb2.AttemptProgress(**f),
    "handed_back": lambda **f: bus_pb2.AttemptHandedBack(**f),
    "worker_died": lambda **f: bus_pb2.AttemptWorkerDied(**f),
    "succeeded": lambda **f: bus_pb2.JobSucceeded(**f),
    "failed": lambda **f: bus_pb2.JobFailed(**f),
    "cancelled": lambda **f: bus_pb2.JobCancelled(**f),
}


def _event(kind: str, attempt: int, time: int = 0, **fields) -> bus_pb2.TrainerEvent:
    event = bus_pb2.TrainerEvent(
        job_id="job_1",
        tenant="default",
        attempt=attempt,
        trainer_id=f"t{attempt}",
        time=Timestamp(seconds=time),
    )
    getattr(event, kind).CopyFrom(BODIES[kind](**fields))
    return event


def _delivery(count: int, sequence: int = 7) -> records_pb2.Delivery:
    return records_pb2.Delivery(stream_sequence=sequence, count=count)


def _start(attempt: int, count: int | None = None, **fields) -> bus_pb2.TrainerEvent:
    """A first delivery's start (numbered), or with attempt 0 a claim."""
    return _event("started", attempt, delivery=_delivery(count or attempt), **fields)


def _apply(job, event) -> Change:
    return apply_event(job, event, MAX_ATTEMPTS)


def _queued() -> records_pb2.JobRecord:
    return records_pb2.JobRecord(
        id="job_1", tenant="default", kind=S.JOB_KIND_FIT, state=S.JOB_STATE_QUEUED
    )


def _fold(*events) -> records_pb2.JobRecord:
    job = _queued()
    for event in events:
        _apply(job, event)
    return job


# A record in each state the protocol can leave it in, at attempt 1 (the
# fresh one at 0), and the change an event of attempt 1 of each kind makes.
RECORDS = {
    "fresh": lambda: _queued(),
    "running": lambda: _fold(_start(1)),
    "handed back": lambda: _fold(_start(1), _event("handed_back", 1)),
    "succeeded": lambda: _fold(_start(1), _event("succeeded", 1)),
    "failed": lambda: _fold(_start(1), _event("failed", 1, error="no y")),
    "cancelled": lambda: _fold(_start(1), _event("cancelled", 1)),
}
N, ST, PR, RQ, EN = Change.NONE, Change.STARTED, Change.PROGRESS, Change.REQUEUED, Change.ENDED
EXPECTED = {
    #              started  progress handed  died  succeeded failed cancelled
    "fresh": (ST, N, RQ, RQ, EN, EN, EN),
    "running": (N, PR, RQ, RQ, EN, EN, EN),
    "handed back": (N, N, N, N, N, N, N),
    "succeeded": (N, N, N, N, N, N, N),
    "failed": (N, N, N, N, N, N, N),
    "cancelled": (N, N, N, N, N, N, N),
}


def test_there_is_a_rule_for_every_kind_of_event():
    oneof = bus_pb2.TrainerEvent.DESCRIPTOR.oneofs_by_name["kind"]
    assert tuple(field.name for field in oneof.fields) == KINDS == tuple(BODIES)


@pytest.mark.parametrize("state", list(RECORDS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_state_and_kind_of_an_event_of_the_current_attempt(state, kind):
    job = RECORDS[state]()
    before = job.SerializeToString()
    change = _apply(job, _start(1) if kind == "started" else _event(kind, 1))
    assert change is EXPECTED[state][KINDS.index(kind)]
    if change is Change.NONE:
        assert job.SerializeToString() == before  # nothing written


@pytest.mark.parametrize("state", ["running", "handed back"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_older_attempts_event_of_any_kind_changes_nothing(state, kind):
    job = RECORDS[state]()
    assert _apply(job, _event("started", 0, delivery=_delivery(5))) is Change.STARTED
    assert job.attempts == 2
    before = job.SerializeToString()
    old = _start(1) if kind == "started" else _event(kind, 1)
    assert _apply(job, old) is Change.NONE
    assert job.SerializeToString() == before


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_with_no_kind_or_after_the_end_changes_nothing(kind):
    job = RECORDS["succeeded"]()
    before = job.SerializeToString()
    assert _apply(job, bus_pb2.TrainerEvent(job_id="job_1", attempt=1)) is Change.NONE
    assert _apply(job, _event(kind, 2)) is Change.NONE
    assert job.SerializeToString() == before


def test_a_run_shows_running_progress_then_success():
    job = _fold(_start(1, cores=2, message="fit started on 2 core(s)"))
    assert (job.state, job.attempts, job.cores, job.trainer_id) == (S.JOB_STATE_RUNNING, 1, 2, "t1")
    _apply(job, _event("progress", 1, fraction=0.5, message="round 5 of 10"))
    assert (job.progress, job.progress_message) == (0.5, "round 5 of 10")
    done = _event(
        "succeeded", 1, outputs=[S.JOB_OUTPUT_MODEL], rows=10, model_sha256="ab", features=["a"]
    )
    assert _apply(job, done) is Change.ENDED
    assert (job.state, job.progress, job.rows, job.output_attempt) == (
        S.JOB_STATE_SUCCEEDED,
        1.0,
        10,
        1,
    )
    assert (list(job.outputs), list(job.features), job.model_sha256) == (
        [S.JOB_OUTPUT_MODEL],
        ["a"],
        "ab",
    )


def test_a_claim_after_a_hand_back_is_the_next_attempt_and_costs_nothing():
    job = _fold(_start(1), _event("handed_back", 1, message="returned to the queue"))
    assert (job.state, job.cores, job.progress_message) == (
        S.JOB_STATE_QUEUED,
        0,
        "returned to the queue",
    )
    assert _apply(job, _event("started", 0, delivery=_delivery(2))) is Change.STARTED
    assert (job.state, job.attempts, job.lost_attempts, job.delivery) == (
        S.JOB_STATE_RUNNING,
        2,
        0,
        _delivery(2),
    )


def test_a_late_progress_report_of_a_handed_back_attempt_does_not_reopen_it():
    job = _fold(_start(1), _event("handed_back", 1))
    assert _apply(job, _event("progress", 1, fraction=0.3)) is Change.NONE
    assert (job.state, job.progress) == (S.JOB_STATE_QUEUED, 0.0)
    # so the next start is no lost attempt
    _apply(job, _event("started", 0, delivery=_delivery(2)))
    assert (job.attempts, job.lost_attempts) == (2, 0)


def test_a_claim_while_the_last_attempt_never_ended_counts_it_lost():
    job = _fold(_start(1))
    assert _apply(job, _event("started", 0, delivery=_delivery(2))) is Change.STARTED
    assert (job.state, job.attempts, job.lost_attempts, job.trainer_id) == (
        S.JOB_STATE_RUNNING,
        2,
        1,
        "t0",
    )


def test_a_stale_or_repeated_claim_changes_nothing():
    job = _fold(_start(1), _event("started", 0, delivery=_delivery(3)))
    before = job.SerializeToString()
    for claim in (_delivery(2), _delivery(3)):  # older, the same again
        assert _apply(job, _event("started", 0, delivery=claim)) is Change.NONE
    assert job.SerializeToString() == before
    # a re-published message (a later stream sequence) is newer than all
    assert _apply(job, _event("started", 0, delivery=_delivery(1, sequence=9))) is Change.STARTED


def test_a_job_whose_trainer_dies_every_time_fails_at_the_limit_saying_so():
    job = _fold(_start(1))
    for count in (2, 3):
        _apply(job, _event("started", 0, delivery=_delivery(count)))
    assert (job.state, job.attempts, job.lost_attempts) == (S.JOB_STATE_RUNNING, 3, 2)
    fourth = _event("started", 0, delivery=_delivery(4))
    assert _apply(job, fourth) is Change.ENDED
    assert (job.state, job.attempts, job.lost_attempts) == (S.JOB_STATE_FAILED, 3, 3)
    assert "stopped 3 time(s)" in job.error and "its trainer died each time" in job.error
    assert f"FITYARD_MAX_ATTEMPTS={MAX_ATTEMPTS}" in job.error
    assert failure_reason(job, fourth) == FAILED_PROCESS_DIED


def test_a_dead_worker_is_a_lost_attempt_retried_until_the_limit():
    job = _fold(_start(1))
    assert _apply(job, _event("worker_died", 1, error="killed by SIGKILL")) is Change.REQUEUED
    assert (job.state, job.lost_attempts) == (S.JOB_STATE_QUEUED, 1)
    assert job.progress_message == "attempt 1: killed by SIGKILL; retrying"
    assert _apply(job, _event("worker_died", 1, error="again")) is Change.NONE  # the same twice
    for attempt in (2, 3):
        _apply(job, _event("started", 0, delivery=_delivery(attempt)))
        change = _apply(job, _event("worker_died", attempt, error="killed by SIGKILL"))
    assert change is Change.ENDED
    assert (job.state, job.lost_attempts) == (S.JOB_STATE_FAILED, 3)
    assert "stopped 3 time(s)" in job.error and "killed by SIGKILL" in job.error


def test_an_older_attempt_can_neither_end_nor_rewind_a_newer_one():
    job = _fold(_start(1), _event("started", 0, delivery=_delivery(2)))
    _apply(job, _event("progress", 2, fraction=0.4))
    assert _apply(job, _event("succeeded", 1, outputs=[S.JOB_OUTPUT_MODEL])) is Change.NONE
    assert _apply(job, _event("progress", 1, fraction=0.9)) is Change.NONE
    assert (job.state, job.attempts, job.progress) == (S.JOB_STATE_RUNNING, 2, 0.4)
    _apply(job, _event("succeeded", 2, outputs=[S.JOB_OUTPUT_MODEL]))
    assert (job.state, job.output_attempt) == (S.JOB_STATE_SUCCEEDED, 2)


def test_a_failed_job_says_why_and_where_it_stopped():
    job = _fold(_start(1), _event("progress", 1, fraction=0.3))
    end = _event("failed", 1, error="no column y", reason="invalid_data", time=5)
    assert _apply(job, end) is Change.ENDED
    assert (job.state, job.output_attempt, job.error) == (S.JOB_STATE_FAILED, 0, "no column y")
    assert (job.progress, job.end_time.seconds) == (0.3, 5)
    assert failure_reason(job, end) == "invalid_data"


def test_a_start_records_its_time_and_a_progress_report_keeps_it():
    job = _fold(_event("started", 1, 100, delivery=_delivery(1)))
    _apply(job, _event("progress", 1, 160, fraction=0.5))
    assert (job.start_time.seconds, job.progress) == (100, 0.5)


def test_any_event_takes_the_job_off_the_queue_board():
    job = _queued()
    job.queue_position, job.estimated_wait_seconds = 3, 12.0
    _apply(job, _start(1))
    assert (job.queue_position, job.estimated_wait_seconds) == (0, 0.0)
