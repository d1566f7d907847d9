"""How each trainer event changes a job's record: the protocol's rules, as
one pure function (no I/O), so every pair of record state and event kind
is proven in the unit tier (tests/test_attempts_unit.py).

The scheduler alone numbers attempts and decides what was lost:
- A message's first delivery runs as the number the scheduler put in the
  task when it published (JobTask.first_attempt): no attempt is unfinished
  then. A redelivery's AttemptStarted carries attempt 0 and its delivery:
  a claim. The scheduler gives it the next number, and if the record's
  current attempt never ended (RUNNING: no end, no hand-back arrived
  before this start) that attempt was lost with its trainer. The claiming
  trainer runs only once the record shows its delivery (trainer/claims.py).
- A worker that died is a lost attempt too, reported by its trainer.
- At FITYARD_MAX_ATTEMPTS lost the job FAILS saying so, instead of
  starting again.
- Events of an attempt older than the record's current one are ignored
  (their trainer lost the job to a redelivery), and so is every event once
  the record is terminal: a late or duplicated event changes nothing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from fityard.v1 import jobs_pb2
from ml.messages import bounded
from services.common.jobs import FAILED_PROCESS_DIED, TERMINAL_STATES
from services.internal.v1 import bus_pb2, records_pb2

log = logging.getLogger(__name__)

State = jobs_pb2.JobState
Event = bus_pb2.TrainerEvent
Record = records_pb2.JobRecord


class Change(enum.Enum):
    """What an event did to the record (the scheduler's side effects
    follow from it: metrics, the live-job counts, the output janitor)."""

    NONE = "none"  # nothing: the record is not written
    STARTED = "started"  # an attempt started running
    PROGRESS = "progress"  # the running attempt reported how far it is
    REQUEUED = "requeued"  # the attempt ended, the job waits in the queue again
    ENDED = "ended"  # the job reached a terminal state


# Every kind of TrainerEvent (its `kind` oneof) and the rule for it.
KINDS = ("started", "progress", "handed_back", "worker_died", "succeeded", "failed", "cancelled")


def apply_event(job: Record, event: Event, max_attempts: int) -> Change:
    """Apply `event` to `job` in place and say what changed."""
    kind = event.WhichOneof("kind")
    if kind is None:
        log.warning("ignoring an event of %s with no kind (a trainer too old?)", event.job_id)
        return Change.NONE
    if job.state in TERMINAL_STATES:
        return Change.NONE
    change = _RULES[kind](job, event, max_attempts)
    if change is not Change.NONE:
        # Its place in the queue is the queue board's to set while it
        # waits (queue_board.py); any event means a trainer has had it.
        job.queue_position = 0
        job.estimated_wait_seconds = 0.0
    return change


def _started(job: Record, event: Event, max_attempts: int) -> Change:
    started = event.started
    if event.attempt == 0:  # a claim: newer than the current attempt's delivery?
        if _delivery(started.delivery) <= _delivery(job.delivery):
            return Change.NONE
        number = job.attempts + 1
    elif event.attempt <= job.attempts:  # a duplicate, or older than the current one
        return Change.NONE
    else:
        number = event.attempt
    if job.state == State.JOB_STATE_RUNNING:
        # The current attempt never ended: its trainer died with it.
        job.lost_attempts += 1
        if job.lost_attempts >= max_attempts:
            return _give_up(job, event, max_attempts, "its trainer died each time")
    job.attempts = number
    job.delivery.CopyFrom(started.delivery)
    job.state = State.JOB_STATE_RUNNING
    job.start_time.CopyFrom(event.time)
    job.trainer_id = event.trainer_id
    job.cores = started.cores
    job.progress = 0.0
    job.progress_message = started.message
    return Change.STARTED


def _progress(job: Record, event: Event, max_attempts: int) -> Change:
    # Only the running attempt's: a late report of an attempt that was
    # handed back must not make the job look RUNNING again.
    if event.attempt != job.attempts or job.state != State.JOB_STATE_RUNNING:
        return Change.NONE
    job.progress = event.progress.fraction
    job.progress_message = event.progress.message
    return Change.PROGRESS


def _handed_back(job: Record, event: Event, max_attempts: int) -> Change:
    if not _ends_current(job, event):
        return Change.NONE
    _requeue(job, event, event.handed_back.message)
    return Change.REQUEUED


def _worker_died(job: Record, event: Event, max_attempts: int) -> Change:
    if not _ends_current(job, event):
        return Change.NONE
    error = event.worker_died.error
    job.lost_attempts += 1
    if job.lost_attempts >= max_attempts:
        return _give_up(job, event, max_attempts, error)
    _requeue(job, event, f"attempt {event.attempt}: {error}; retrying")
    return Change.REQUEUED


def _succeeded(job: Record, event: Event, max_attempts: int) -> Change:
    if not _ends_current(job, event):
        return Change.NONE
    succeeded = event.succeeded
    _end(job, event, State.JOB_STATE_SUCCEEDED, succeeded.message)
    job.progress = 1.0
    job.output_attempt = event.attempt
    job.outputs.extend(succeeded.outputs)
    if succeeded.rows:
        job.rows = succeeded.rows
    job.features.extend(succeeded.features)
    if job.kind == jobs_pb2.JOB_KIND_FIT:
        job.model_sha256 = succeeded.model_sha256
        job.metrics.CopyFrom(succeeded.metrics)
    return Change.ENDED


def _failed(job: Record, event: Event, max_attempts: int) -> Change:
    if not _ends_current(job, event):
        return Change.NONE
    _end(job, event, State.JOB_STATE_FAILED, "failed")
    job.error = event.failed.error
    return Change.ENDED


def _cancelled(job: Record, event: Event, max_attempts: int) -> Change:
    # The scheduler writes CANCELLED itself when a user cancels, so this
    # changes a record only if that write was lost to a blip.
    if not _ends_current(job, event):
        return Change.NONE
    _end(job, event, State.JOB_STATE_CANCELLED, "cancelled by the user")
    return Change.ENDED


def _ends_current(job: Record, event: Event) -> bool:
    """Whether `event` ends the attempt the record counts as running (or a
    newer one whose start it has not seen): not a stale one, nor one that
    has ended already (handed back, or its worker's death reported)."""
    if event.attempt < job.attempts:
        return False
    return not (event.attempt == job.attempts and job.state != State.JOB_STATE_RUNNING)


def _requeue(job: Record, event: Event, message: str) -> None:
    job.attempts = event.attempt
    job.state = State.JOB_STATE_QUEUED
    job.progress = 0.0
    job.progress_message = message
    job.cores = 0


def _end(job: Record, event: Event, state: int, message: str) -> None:
    job.attempts = max(job.attempts, event.attempt)
    job.state = state
    job.end_time.CopyFrom(event.time)
    job.progress_message = message
    job.trainer_id = event.trainer_id or job.trainer_id
    job.error = ""
    del job.outputs[:]
    del job.features[:]


def _give_up(job: Record, event: Event, max_attempts: int, how: str) -> Change:
    _end(job, event, State.JOB_STATE_FAILED, "failed")
    job.error = bounded(
        f"the job was stopped {job.lost_attempts} time(s) by the death of the process running it ({how}), "
        f"the most this server retries (FITYARD_MAX_ATTEMPTS={max_attempts}); most likely it "
        "needs more memory than a trainer has: try a smaller dataset, a smaller max_iter or max_leaf_nodes"
    )
    log.warning("job %s failed: %s", job.id, job.error)
    return Change.ENDED


def failure_reason(job: Record, event: Event) -> str:
    """Why a job that `event` ended FAILED, in one word (for metrics)."""
    if job.state != State.JOB_STATE_FAILED:
        return ""
    if event.WhichOneof("kind") == "failed":
        return event.failed.reason
    return FAILED_PROCESS_DIED


def _delivery(delivery: records_pb2.Delivery) -> tuple[int, int]:
    return (delivery.stream_sequence, delivery.count)


_RULES: dict[str, Callable[[Record, Event, int], Change]] = {
    "started": _started,
    "progress": _progress,
    "handed_back": _handed_back,
    "worker_died": _worker_died,
    "succeeded": _succeeded,
    "failed": _failed,
    "cancelled": _cancelled,
}
