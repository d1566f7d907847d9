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
    __slots__ = ("job", "first_attempt")
    JOB_FIELD_NUMBER: _ClassVar[int]
    FIRST_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job: _records_pb2.JobRecord
    first_attempt: int
    def __init__(self, job: _Optional[_Union[_records_pb2.JobRecord, _Mapping]] = ..., first_attempt: _Optional[int] = ...) -> None: ...

class TrainerEvent(_message.Message):
    __slots__ = ("job_id", "tenant", "trainer_id", "attempt", "time", "started", "progress", "handed_back", "worker_died", "succeeded", "failed", "cancelled")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TRAINER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    HANDED_BACK_FIELD_NUMBER: _ClassVar[int]
    WORKER_DIED_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tenant: str
    trainer_id: str
    attempt: int
    time: _timestamp_pb2.Timestamp
    started: AttemptStarted
    progress: AttemptProgress
    handed_back: AttemptHandedBack
    worker_died: AttemptWorkerDied
    succeeded: JobSucceeded
    failed: JobFailed
    cancelled: JobCancelled
    def __init__(self, job_id: _Optional[str] = ..., tenant: _Optional[str] = ..., trainer_id: _Optional[str] = ..., attempt: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[AttemptStarted, _Mapping]] = ..., progress: _Optional[_Union[AttemptProgress, _Mapping]] = ..., handed_back: _Optional[_Union[AttemptHandedBack, _Mapping]] = ..., worker_died: _Optional[_Union[AttemptWorkerDied, _Mapping]] = ..., succeeded: _Optional[_Union[JobSucceeded, _Mapping]] = ..., failed: _Optional[_Union[JobFailed, _Mapping]] = ..., cancelled: _Optional[_Union[JobCancelled, _Mapping]] = ...) -> None: ...

class AttemptStarted(_message.Message):
    __slots__ = ("delivery", "cores", "message")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    delivery: _records_pb2.Delivery
    cores: int
    message: str
    def __init__(self, delivery: _Optional[_Union[_records_pb2.Delivery, _Mapping]] = ..., cores: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class AttemptProgress(_message.Message):
    __slots__ = ("fraction", "message")
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    message: str
    def __init__(self, fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class AttemptHandedBack(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class AttemptWorkerDied(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: str
    def __init__(self, error: _Optional[str] = ...) -> None: ...

class JobSucceeded(_message.Message):
    __slots__ = ("outputs", "rows", "message", "features", "model_sha256", "metrics")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.RepeatedScalarFieldContainer[_jobs_pb2.JobOutput]
    rows: int
    message: str
    features: _containers.RepeatedScalarFieldContainer[str]
    model_sha256: str
    metrics: _jobs_pb2.FitMetrics
    def __init__(self, outputs: _Optional[_Iterable[_Union[_jobs_pb2.JobOutput, str]]] = ..., rows: _Optional[int] = ..., message: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., model_sha256: _Optional[str] = ..., metrics: _Optional[_Union[_jobs_pb2.FitMetrics, _Mapping]] = ...) -> None: ...

class JobFailed(_message.Message):
    __slots__ = ("error", "reason")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    error: str
    reason: str
    def __init__(self, error: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class JobCancelled(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
