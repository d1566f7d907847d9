from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("model_id", "rows", "arrow_ipc", "request_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    rows: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    arrow_ipc: bytes
    request_id: str
    def __init__(self, model_id: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., arrow_ipc: _Optional[bytes] = ..., request_id: _Optional[str] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("classes", "labels", "probabilities", "arrow_ipc", "request_id")
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    labels: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    probabilities: _containers.RepeatedCompositeFieldContainer[ClassProbabilities]
    arrow_ipc: bytes
    request_id: str
    def __init__(self, classes: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., labels: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., probabilities: _Optional[_Iterable[_Union[ClassProbabilities, _Mapping]]] = ..., arrow_ipc: _Optional[bytes] = ..., request_id: _Optional[str] = ...) -> None: ...

class StreamPredictRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: PredictRequest
    def __init__(self, request: _Optional[_Union[PredictRequest, _Mapping]] = ...) -> None: ...

class StreamPredictResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: PredictResponse
    def __init__(self, response: _Optional[_Union[PredictResponse, _Mapping]] = ...) -> None: ...

class ClassProbabilities(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...
