"""Folding trainer events into a job record (pure logic, no processes):
what a user sees in GetJob when events arrive late, twice, or from an
attempt that no longer counts."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from fityard.v1 import jobs_pb2
from services.internal.v1 import bus_pb2, records_pb2
from services.scheduler.events import apply_event

S = jobs_pb2


def _event(state: int, attempt: int, **fields) -> bus_pb2.TrainerEvent:
    return bus_pb2.TrainerEvent(
        job_id="job_1",
        tenant="default",
        state=state,
        attempt=attempt,
        trainer_id=f"t{attempt}",
        **fields,
    )


def _fold(*events: bus_pb2.TrainerEvent) -> records_pb2.JobRecord:
    job = records_pb2.JobRecord(id="job_1", tenant="default", state=S.JOB_STATE_QUEUED)
    for event in events:
        apply_event(job, event)
    return job


def test_a_run_shows_running_progress_then_success():
    job = _fold(
        _event(S.JOB_STATE_RUNNING, 1, progress=0.0, cores=2),
        _event(S.JOB_STATE_RUNNING, 1, progress=0.5, progress_message="fitting"),
        _event(S.JOB_STATE_SUCCEEDED, 1, progress=1.0, outputs=[S.JOB_OUTPUT_MODEL], rows=10),
    )
    assert (job.state, job.attempts, job.progress, job.rows) == (S.JOB_STATE_SUCCEEDED, 1, 1.0, 10)
    assert list(job.outputs) == [S.JOB_OUTPUT_MODEL] and job.cores == 2


def test_an_ended_job_never_changes_again():
    job = _fold(_event(S.JOB_STATE_RUNNING, 1), _event(S.JOB_STATE_FAILED, 1, error="no y"))
    for late in (
        _event(S.JOB_STATE_RUNNING, 2),
        _event(S.JOB_STATE_SUCCEEDED, 2, outputs=[S.JOB_OUTPUT_MODEL]),
    ):
        assert apply_event(job, late) is False
    assert (job.state, job.error, job.attempts) == (S.JOB_STATE_FAILED, "no y", 1)


def test_an_older_attempt_can_neither_end_nor_rewind_a_newer_one():
    job = _fold(_event(S.JOB_STATE_RUNNING, 1), _event(S.JOB_STATE_RUNNING, 2, progress=0.4))
    assert apply_event(job, _event(S.JOB_STATE_SUCCEEDED, 1, outputs=[S.JOB_OUTPUT_MODEL])) is False
    assert apply_event(job, _event(S.JOB_STATE_RUNNING, 1, progress=0.9)) is False
    assert (job.state, job.attempts, job.progress, job.trainer_id) == (
        S.JOB_STATE_RUNNING,
        2,
        0.4,
        "t2",
    )
    apply_event(job, _event(S.JOB_STATE_SUCCEEDED, 2, outputs=[S.JOB_OUTPUT_MODEL]))
    assert (job.state, job.attempts) == (S.JOB_STATE_SUCCEEDED, 2)


def test_a_handed_back_job_is_queued_again_and_keeps_its_lost_count():
    job = _fold(
        _event(S.JOB_STATE_RUNNING, 1, lost_attempts=1, cores=2),
        _event(S.JOB_STATE_QUEUED, 1, lost_attempts=1, progress_message="returned to the queue"),
    )
    assert (job.state, job.attempts, job.lost_attempts, job.cores, job.progress) == (
        S.JOB_STATE_QUEUED,
        1,
        1,
        0,
        0.0,
    )
    assert job.progress_message == "returned to the queue"
    # a progress report of the handed-back attempt, folded late, changes nothing
    # (RUNNING again, the next trainer would count the attempt lost)
    assert apply_event(job, _event(S.JOB_STATE_RUNNING, 1, progress=0.3)) is False
    assert (job.state, job.progress) == (S.JOB_STATE_QUEUED, 0.0)
    apply_event(job, _event(S.JOB_STATE_RUNNING, 2, lost_attempts=1))
    assert (job.state, job.attempts, job.lost_attempts) == (S.JOB_STATE_RUNNING, 2, 1)


def test_lost_attempts_only_grow():
    job = _fold(_event(S.JOB_STATE_RUNNING, 3, lost_attempts=2))
    apply_event(job, _event(S.JOB_STATE_RUNNING, 3, lost_attempts=0, progress=0.2))
    assert job.lost_attempts == 2


def test_the_attempt_that_succeeds_is_the_one_whose_outputs_count():
    job = _fold(
        _event(S.JOB_STATE_RUNNING, 1, cores=4),
        _event(S.JOB_STATE_QUEUED, 1, progress_message="the training process died; retrying"),
        _event(S.JOB_STATE_RUNNING, 2, cores=1),
    )
    assert (job.state, job.cores, job.output_attempt) == (S.JOB_STATE_RUNNING, 1, 0)
    apply_event(job, _event(S.JOB_STATE_SUCCEEDED, 2, outputs=[S.JOB_OUTPUT_MODEL], rows=7))
    assert (job.attempts, job.output_attempt, job.trainer_id) == (2, 2, "t2")
    assert (job.progress, job.rows, list(job.outputs)) == (1.0, 7, [S.JOB_OUTPUT_MODEL])


def test_a_failed_job_has_no_counting_attempt_and_says_why():
    job = _fold(
        _event(S.JOB_STATE_RUNNING, 1, progress=0.3),
        _event(S.JOB_STATE_FAILED, 1, error="no column y", progress_message="failed"),
    )
    assert (job.state, job.output_attempt, job.error) == (S.JOB_STATE_FAILED, 0, "no column y")
    assert job.progress == 0.3  # where it stopped


def test_a_start_records_its_time_and_a_progress_report_keeps_it():
    started = Timestamp(seconds=100)
    job = _fold(_event(S.JOB_STATE_RUNNING, 1, time=started))
    apply_event(job, _event(S.JOB_STATE_RUNNING, 1, progress=0.5, time=Timestamp(seconds=160)))
    assert job.start_time == started and job.progress == 0.5


def test_an_end_without_a_trainer_keeps_the_one_that_ran_it():
    # A job given up before it starts again is ended by whichever trainer
    # read it; an event that names none leaves the last one.
    job = _fold(_event(S.JOB_STATE_RUNNING, 1))
    end = _event(S.JOB_STATE_FAILED, 1, error="lost", time=Timestamp(seconds=5))
    end.trainer_id = ""
    assert apply_event(job, end) is True
    assert (job.trainer_id, job.end_time.seconds) == ("t1", 5)


def test_an_event_in_a_state_no_trainer_sends_changes_nothing():
    job = _fold(_event(S.JOB_STATE_RUNNING, 1))
    before = job.SerializeToString()
    assert apply_event(job, _event(S.JOB_STATE_UNSPECIFIED, 1)) is False
    assert job.SerializeToString() == before
