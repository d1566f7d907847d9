import datetime

from fityard.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.internal.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobTask(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _records_pb2.JobRecord
    def __init__(self, job: _Optional[_Union[_records_pb2.JobRecord, _Mapping]] = ...) -> None: ...

class TrainerEvent(_message.Message):
    __slots__ = ("job_id", "tenant", "state", "progress", "progress_message", "error", "outputs", "rows", "trainer_id", "attempt", "time", "cores", "lost_attempts", "failure_reason", "features", "model_sha256", "metrics")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TRAINER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    LOST_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tenant: str
    state: _jobs_pb2.JobState
    progress: float
    progress_message: str
    error: str
    outputs: _containers.RepeatedScalarFieldContainer[_jobs_pb2.JobOutput]
    rows: int
    trainer_id: str
    attempt: int
    time: _timestamp_pb2.Timestamp
    cores: int
    lost_attempts: int
    failure_reason: str
    features: _containers.RepeatedScalarFieldContainer[str]
    model_sha256: str
    metrics: _jobs_pb2.FitMetrics
    def __init__(self, job_id: _Optional[str] = ..., tenant: _Optional[str] = ..., state: _Optional[_Union[_jobs_pb2.JobState, str]] = ..., progress: _Optional[float] = ..., progress_message: _Optional[str] = ..., error: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_jobs_pb2.JobOutput, str]]] = ..., rows: _Optional[int] = ..., trainer_id: _Optional[str] = ..., attempt: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cores: _Optional[int] = ..., lost_attempts: _Optional[int] = ..., failure_reason: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., model_sha256: _Optional[str] = ..., metrics: _Optional[_Union[_jobs_pb2.FitMetrics, _Mapping]] = ...) -> None: ...
