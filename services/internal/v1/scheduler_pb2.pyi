from fityard.v1 import jobs_pb2 as _jobs_pb2
from services.internal.v1 import records_pb2 as _records_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitJobRequest(_message.Message):
    __slots__ = ("tenant", "kind", "dataset_id", "model_id", "params", "request_id", "timeout_seconds", "no_cache", "priority", "probabilities")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    kind: _jobs_pb2.JobKind
    dataset_id: str
    model_id: str
    params: _jobs_pb2.FitParams
    request_id: str
    timeout_seconds: float
    no_cache: bool
    priority: _jobs_pb2.Priority
    probabilities: bool
    def __init__(self, tenant: _Optional[str] = ..., kind: _Optional[_Union[_jobs_pb2.JobKind, str]] = ..., dataset_id: _Optional[str] = ..., model_id: _Optional[str] = ..., params: _Optional[_Union[_jobs_pb2.FitParams, _Mapping]] = ..., request_id: _Optional[str] = ..., timeout_seconds: _Optional[float] = ..., no_cache: _Optional[bool] = ..., priority: _Optional[_Union[_jobs_pb2.Priority, str]] = ..., probabilities: _Optional[bool] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _records_pb2.JobRecord
    def __init__(self, job: _Optional[_Union[_records_pb2.JobRecord, _Mapping]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("tenant", "job_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    job_id: str
    def __init__(self, tenant: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _records_pb2.JobRecord
    def __init__(self, job: _Optional[_Union[_records_pb2.JobRecord, _Mapping]] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("tenant", "job_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    job_id: str
    def __init__(self, tenant: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("tenant", "dataset_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    dataset_id: str
    def __init__(self, tenant: _Optional[str] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
