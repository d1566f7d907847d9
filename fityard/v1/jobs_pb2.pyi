import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from fityard.v1 import datasets_pb2 as _datasets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_FIT: _ClassVar[JobKind]
    JOB_KIND_PREDICT: _ClassVar[JobKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class JobOutput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_OUTPUT_UNSPECIFIED: _ClassVar[JobOutput]
    JOB_OUTPUT_MODEL: _ClassVar[JobOutput]
    JOB_OUTPUT_PREDICTIONS: _ClassVar[JobOutput]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_INTERACTIVE: _ClassVar[Priority]
    PRIORITY_BATCH: _ClassVar[Priority]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_FIT: JobKind
JOB_KIND_PREDICT: JobKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_OUTPUT_UNSPECIFIED: JobOutput
JOB_OUTPUT_MODEL: JobOutput
JOB_OUTPUT_PREDICTIONS: JobOutput
PRIORITY_UNSPECIFIED: Priority
PRIORITY_INTERACTIVE: Priority
PRIORITY_BATCH: Priority

class FitParams(_message.Message):
    __slots__ = ("learning_rate", "max_iter", "max_leaf_nodes", "max_depth", "min_samples_leaf", "l2_regularization", "max_bins", "random_state", "early_stopping", "validation_fraction")
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_ITER_FIELD_NUMBER: _ClassVar[int]
    MAX_LEAF_NODES_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_LEAF_FIELD_NUMBER: _ClassVar[int]
    L2_REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    MAX_BINS_FIELD_NUMBER: _ClassVar[int]
    RANDOM_STATE_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    max_depth: int
    min_samples_leaf: int
    l2_regularization: float
    max_bins: int
    random_state: int
    early_stopping: str
    validation_fraction: float
    def __init__(self, learning_rate: _Optional[float] = ..., max_iter: _Optional[int] = ..., max_leaf_nodes: _Optional[int] = ..., max_depth: _Optional[int] = ..., min_samples_leaf: _Optional[int] = ..., l2_regularization: _Optional[float] = ..., max_bins: _Optional[int] = ..., random_state: _Optional[int] = ..., early_stopping: _Optional[str] = ..., validation_fraction: _Optional[float] = ...) -> None: ...

class FitMetrics(_message.Message):
    __slots__ = ("classes", "features", "n_iter", "fit_seconds", "model_size_bytes", "train_rows", "validation_rows", "validation_fraction", "validation_seed", "validation_accuracy", "validation_log_loss")
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    N_ITER_FIELD_NUMBER: _ClassVar[int]
    FIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ROWS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_SEED_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOG_LOSS_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    features: _containers.RepeatedCompositeFieldContainer[_datasets_pb2.Column]
    n_iter: int
    fit_seconds: float
    model_size_bytes: int
    train_rows: int
    validation_rows: int
    validation_fraction: float
    validation_seed: int
    validation_accuracy: float
    validation_log_loss: float
    def __init__(self, classes: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., features: _Optional[_Iterable[_Union[_datasets_pb2.Column, _Mapping]]] = ..., n_iter: _Optional[int] = ..., fit_seconds: _Optional[float] = ..., model_size_bytes: _Optional[int] = ..., train_rows: _Optional[int] = ..., validation_rows: _Optional[int] = ..., validation_fraction: _Optional[float] = ..., validation_seed: _Optional[int] = ..., validation_accuracy: _Optional[float] = ..., validation_log_loss: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "kind", "state", "dataset_id", "model_id", "params", "create_time", "start_time", "end_time", "attempts", "progress", "progress_message", "error", "outputs", "rows", "lost_attempts", "timeout_seconds", "trace_id", "cached", "cached_from", "priority", "queue_position", "estimated_wait_seconds", "metrics", "probabilities")
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
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    CACHED_FROM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: JobKind
    state: JobState
    dataset_id: str
    model_id: str
    params: FitParams
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    attempts: int
    progress: float
    progress_message: str
    error: str
    outputs: _containers.RepeatedScalarFieldContainer[JobOutput]
    rows: int
    lost_attempts: int
    timeout_seconds: float
    trace_id: str
    cached: bool
    cached_from: str
    priority: Priority
    queue_position: int
    estimated_wait_seconds: float
    metrics: FitMetrics
    probabilities: bool
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[JobKind, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., dataset_id: _Optional[str] = ..., model_id: _Optional[str] = ..., params: _Optional[_Union[FitParams, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., progress: _Optional[float] = ..., progress_message: _Optional[str] = ..., error: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[JobOutput, str]]] = ..., rows: _Optional[int] = ..., lost_attempts: _Optional[int] = ..., timeout_seconds: _Optional[float] = ..., trace_id: _Optional[str] = ..., cached: _Optional[bool] = ..., cached_from: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., queue_position: _Optional[int] = ..., estimated_wait_seconds: _Optional[float] = ..., metrics: _Optional[_Union[FitMetrics, _Mapping]] = ..., probabilities: _Optional[bool] = ...) -> None: ...

class SubmitFitRequest(_message.Message):
    __slots__ = ("dataset_id", "params", "request_id", "timeout_seconds", "no_cache", "priority")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    params: FitParams
    request_id: str
    timeout_seconds: float
    no_cache: bool
    priority: Priority
    def __init__(self, dataset_id: _Optional[str] = ..., params: _Optional[_Union[FitParams, _Mapping]] = ..., request_id: _Optional[str] = ..., timeout_seconds: _Optional[float] = ..., no_cache: _Optional[bool] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class SubmitFitResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class SubmitPredictRequest(_message.Message):
    __slots__ = ("model_id", "dataset_id", "request_id", "timeout_seconds", "priority", "probabilities")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    dataset_id: str
    request_id: str
    timeout_seconds: float
    priority: Priority
    probabilities: bool
    def __init__(self, model_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., request_id: _Optional[str] = ..., timeout_seconds: _Optional[float] = ..., priority: _Optional[_Union[Priority, str]] = ..., probabilities: _Optional[bool] = ...) -> None: ...

class SubmitPredictResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DownloadJobOutputRequest(_message.Message):
    __slots__ = ("job_id", "output")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    output: JobOutput
    def __init__(self, job_id: _Optional[str] = ..., output: _Optional[_Union[JobOutput, str]] = ...) -> None: ...

class DownloadJobOutputResponse(_message.Message):
    __slots__ = ("info", "chunk")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    info: OutputInfo
    chunk: bytes
    def __init__(self, info: _Optional[_Union[OutputInfo, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class OutputInfo(_message.Message):
    __slots__ = ("output", "size_bytes", "filename", "content_type")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    output: JobOutput
    size_bytes: int
    filename: str
    content_type: str
    def __init__(self, output: _Optional[_Union[JobOutput, str]] = ..., size_bytes: _Optional[int] = ..., filename: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...
