"""The public Job and Dataset derived from the server's records
(services/gateway/resources.py), without a stack: a user sees every public
field and nothing of the server's own."""

from __future__ import annotations

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.unknown_fields import UnknownFieldSet

from fityard.v1 import datasets_pb2, jobs_pb2
from services.gateway.resources import public_dataset, public_job
from services.internal.v1 import records_pb2

S = jobs_pb2
INTERNAL_JOB_FIELDS = {
    "lane",
    "tenant",
    "trainer_id",
    "cores",
    "request_id",
    "model_attempt",
    "output_attempt",
    "traceparent",
    "model_source_id",
    "followers",
    "model_sha256",
}
# Public fields computed from the record rather than copied: the trace id is
# the one in the record's traceparent.
DERIVED_JOB_FIELDS = {"trace_id", "cached", "priority"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _job_record() -> records_pb2.JobRecord:
    """A record with every field set, none to its default."""
    return records_pb2.JobRecord(
        id="job_5b0c9e7d1a2f3e4d",
        kind=S.JOB_KIND_PREDICT,
        state=S.JOB_STATE_SUCCEEDED,
        dataset_id="ds_3f9c1a2b4d5e6f70",
        model_id="job_0123456789abcdef",
        params=S.FitParams(max_iter=50, early_stopping="false"),
        create_time=Timestamp(seconds=1, nanos=5),
        start_time=Timestamp(seconds=2),
        end_time=Timestamp(seconds=3),
        attempts=2,
        progress=1.0,
        progress_message="done in 1.2s",
        error="an earlier message",
        outputs=[S.JOB_OUTPUT_PREDICTIONS],
        rows=1234,
        lost_attempts=1,
        timeout_seconds=600.0,
        lane="default",
        tenant="default",
        trainer_id="host-42",
        cores=4,
        request_id="7f3e",
        model_attempt=3,
        output_attempt=2,
        traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        cached_from="job_00112233445566778899",
        model_source_id="job_99887766554433221100",
        followers=["job_aabbccddeeff00112233"],
        model_sha256="ab" * 32,
        queue_position=3,
        estimated_wait_seconds=40.0,
        metrics=jobs_pb2.FitMetrics(n_iter=7, train_rows=900, validation_rows=100),
        probabilities=True,
    )


def _set_fields(message: Message) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


def test_a_job_shows_every_public_field_of_its_record():
    record = _job_record()
    job = public_job(record)
    public = {f.name for f in jobs_pb2.Job.DESCRIPTOR.fields}
    # Every field of the public Job is filled from the record (a field added
    # to Job but not to public_job fails here) ...
    assert _set_fields(job) == public
    for name in public - DERIVED_JOB_FIELDS:
        assert getattr(job, name) == getattr(record, name), name
    assert job.trace_id == TRACE_ID
    assert job.cached  # its model is another fit's
    assert job.priority == S.PRIORITY_BATCH  # the default lane's


def test_a_job_submitted_without_tracing_has_no_trace_id():
    assert public_job(records_pb2.JobRecord(id="job_1")).trace_id == ""


def test_the_server_s_own_fields_stay_out_of_the_job_even_on_the_wire():
    job = public_job(_job_record())
    assert INTERNAL_JOB_FIELDS.isdisjoint(f.name for f in jobs_pb2.Job.DESCRIPTOR.fields)
    assert not list(UnknownFieldSet(job))
    # What a client receives decodes as a record with none of them set.
    received = records_pb2.JobRecord.FromString(job.SerializeToString())
    assert INTERNAL_JOB_FIELDS.isdisjoint(_set_fields(received))


def test_times_and_params_a_record_does_not_have_stay_unset():
    record = records_pb2.JobRecord(id="job_1", state=S.JOB_STATE_QUEUED, create_time=Timestamp())
    job = public_job(record)
    assert job.HasField("create_time")
    for name in ("start_time", "end_time", "params"):
        assert not job.HasField(name), name


def test_the_record_keeps_the_public_fields_numbers_so_older_records_still_read():
    # Records were public Jobs / Datasets before; each public field has the
    # same number and type in the record.
    for public, record in [
        (jobs_pb2.Job, records_pb2.JobRecord),
        (datasets_pb2.Dataset, records_pb2.DatasetRecord),
    ]:
        for field in public.DESCRIPTOR.fields:
            if field.name in DERIVED_JOB_FIELDS:
                continue
            twin = record.DESCRIPTOR.fields_by_name[field.name]
            assert (twin.number, twin.type) == (field.number, field.type), field.name
            if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_ENUM):
                kind = field.message_type or field.enum_type
                twin_kind = twin.message_type or twin.enum_type
                assert twin_kind.full_name == kind.full_name, field.name


def _reserved_names(message: type[Message]) -> set[str]:
    proto = descriptor_pb2.DescriptorProto()
    message.DESCRIPTOR.CopyToProto(proto)
    return set(proto.reserved_name)


def test_the_fields_that_left_the_api_are_reserved():
    # So that no later field reuses their names or numbers for something else.
    assert {"lane", "tenant", "trainer_id", "cores"} <= _reserved_names(jobs_pb2.Job)
    assert "tenant" in _reserved_names(datasets_pb2.Dataset)


def test_a_dataset_shows_its_record_but_not_its_tenant():
    record = records_pb2.DatasetRecord(
        id="ds_3f9c1a2b4d5e6f70",
        name="train.parquet",
        size_bytes=10,
        sha256="ab" * 32,
        rows=3,
        columns=[datasets_pb2.Column(name="y", type="int64")],
        create_time=Timestamp(seconds=9),
        tenant="default",
    )
    dataset = public_dataset(record)
    public = {f.name for f in datasets_pb2.Dataset.DESCRIPTOR.fields}
    assert _set_fields(dataset) == public and "tenant" not in public
    for name in public:
        assert getattr(dataset, name) == getattr(record, name), name
    received = records_pb2.DatasetRecord.FromString(dataset.SerializeToString())
    assert received.tenant == ""
