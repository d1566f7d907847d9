import datetime

from fityard.v1 import datasets_pb2 as _datasets_pb2
from fityard.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobRecord(_message.Message):
    __slots__ = ("id", "kind", "state", "dataset_id", "model_id", "params", "create_time", "start_time", "end_time", "attempts", "progress", "progress_message", "error", "outputs", "rows", "lost_attempts", "timeout_seconds", "lane", "tenant", "trainer_id", "cores", "request_id", "model_attempt", "output_attempt", "traceparent", "features", "cached_from", "model_source_id", "followers", "model_sha256", "queue_position", "estimated_wait_seconds", "metrics", "probabilities", "delivery")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LOST_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TRAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CACHED_FROM_FIELD_NUMBER: _ClassVar[int]
    MODEL_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: _jobs_pb2.JobKind
    state: _jobs_pb2.JobState
    dataset_id: str
    model_id: str
    params: _jobs_pb2.FitParams
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    attempts: int
    progress: float
    progress_message: str
    error: str
    outputs: _containers.RepeatedScalarFieldContainer[_jobs_pb2.JobOutput]
    rows: int
    lost_attempts: int
    timeout_seconds: float
    lane: str
    tenant: str
    trainer_id: str
    cores: int
    request_id: str
    model_attempt: int
    output_attempt: int
    traceparent: str
    features: _containers.RepeatedScalarFieldContainer[str]
    cached_from: str
    model_source_id: str
    followers: _containers.RepeatedScalarFieldContainer[str]
    model_sha256: str
    queue_position: int
    estimated_wait_seconds: float
    metrics: _jobs_pb2.FitMetrics
    probabilities: bool
    delivery: Delivery
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[_jobs_pb2.JobKind, str]] = ..., state: _Optional[_Union[_jobs_pb2.JobState, str]] = ..., dataset_id: _Optional[str] = ..., model_id: _Optional[str] = ..., params: _Optional[_Union[_jobs_pb2.FitParams, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., progress: _Optional[float] = ..., progress_message: _Optional[str] = ..., error: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_jobs_pb2.JobOutput, str]]] = ..., rows: _Optional[int] = ..., lost_attempts: _Optional[int] = ..., timeout_seconds: _Optional[float] = ..., lane: _Optional[str] = ..., tenant: _Optional[str] = ..., trainer_id: _Optional[str] = ..., cores: _Optional[int] = ..., request_id: _Optional[str] = ..., model_attempt: _Optional[int] = ..., output_attempt: _Optional[int] = ..., traceparent: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., cached_from: _Optional[str] = ..., model_source_id: _Optional[str] = ..., followers: _Optional[_Iterable[str]] = ..., model_sha256: _Optional[str] = ..., queue_position: _Optional[int] = ..., estimated_wait_seconds: _Optional[float] = ..., metrics: _Optional[_Union[_jobs_pb2.FitMetrics, _Mapping]] = ..., probabilities: _Optional[bool] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("stream_sequence", "count")
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    stream_sequence: int
    count: int
    def __init__(self, stream_sequence: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class DatasetRecord(_message.Message):
    __slots__ = ("id", "name", "size_bytes", "sha256", "rows", "columns", "create_time", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    size_bytes: int
    sha256: str
    rows: int
    columns: _containers.RepeatedCompositeFieldContainer[_datasets_pb2.Column]
    create_time: _timestamp_pb2.Timestamp
    tenant: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., rows: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[_datasets_pb2.Column, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class TrainerStatus(_message.Message):
    __slots__ = ("trainer_id", "host", "pid", "state", "tenant", "job_id", "cores", "threads", "start_time", "update_time", "state_time")
    TRAINER_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_TIME_FIELD_NUMBER: _ClassVar[int]
    trainer_id: str
    host: str
    pid: int
    state: str
    tenant: str
    job_id: str
    cores: int
    threads: int
    start_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    state_time: _timestamp_pb2.Timestamp
    def __init__(self, trainer_id: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., state: _Optional[str] = ..., tenant: _Optional[str] = ..., job_id: _Optional[str] = ..., cores: _Optional[int] = ..., threads: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
