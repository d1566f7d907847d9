"""Facts about jobs that more than one service needs, defined once: which
states are terminal, what each kind produces, the names of states and
kinds, a record's counting attempt, the parameters a user set. (The SDK has its own public versions;
the server does not import them.)"""

from __future__ import annotations

from fityard.v1 import jobs_pb2
from services.internal.v1 import records_pb2

# A job in one of these never changes again.
TERMINAL_STATES = frozenset(
    {jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}
)


# Why a job FAILED, in one word: the trainer's FAILED event says it and the
# scheduler counts it (fityard_jobs_ended_total{reason}); the message the
# user reads is the job's error.
FAILED_INVALID_DATA = "invalid_data"  # the user's data or parameters (ml.DataError)
FAILED_TIMEOUT = "timeout"  # over the job's run limit
FAILED_PROCESS_DIED = "process_died"  # its process died FITYARD_MAX_ATTEMPTS times
FAILED_INTERNAL = "internal_error"  # a bug or an environment problem: in the trainer's log
FAILURE_REASONS = (FAILED_INVALID_DATA, FAILED_TIMEOUT, FAILED_PROCESS_DIED, FAILED_INTERNAL)


# What each kind of job produces; the first is its main output (what a
# download that names none returns).
OUTPUTS = {
    jobs_pb2.JOB_KIND_FIT: (jobs_pb2.JOB_OUTPUT_MODEL,),
    jobs_pb2.JOB_KIND_PREDICT: (jobs_pb2.JOB_OUTPUT_PREDICTIONS,),
}


def kind_name(kind: int) -> str:
    """ "fit" / "predict": the form used in subjects, filters and messages."""
    return jobs_pb2.JobKind.Name(kind).removeprefix("JOB_KIND_").lower()


def state_name(state: int) -> str:
    """ "QUEUED", "RUNNING", ...: the form used in filters and messages."""
    return jobs_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def output_owner(record: records_pb2.JobRecord) -> str:
    """The job under whose keys the record's outputs are stored: itself, or
    for a cached fit the fit it was answered from."""
    return record.cached_from or record.id


def output_attempt(record: records_pb2.JobRecord) -> int:
    """The attempt whose outputs count. Records written before the field
    existed name it by their last attempt, which is the same one."""
    return record.output_attempt or record.attempts


def params_dict(params: jobs_pb2.FitParams) -> dict:
    """The parameters a user actually set (unset ones keep sklearn's defaults)."""
    return {
        field.name: getattr(params, field.name)
        for field in params.DESCRIPTOR.fields
        if params.HasField(field.name)
    }
