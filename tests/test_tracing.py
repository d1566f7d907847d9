"""One trace per job, end to end: a stack exporting over OTLP/gRPC to a
receiver the test starts (the same receiver `fityard up` runs), a fit and a
predict, and each job's spans read back by its `Job.trace_id`."""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider

from fityard import Client, NotFound
from fityard.traces import Span, read_trace
from services import span_store
from services.embedded import EmbeddedStack, free_port
from tests.support.faults import fault_env, fit_of_seconds, settle, wait_for_run
from tests.support.s3server import s3_env, storage_config_for

pytestmark = pytest.mark.stack

SERVICES = {"fityard-gateway", "fityard-scheduler", "fityard-trainer"}


def _spans_of(directory, job, last: str):
    """The job's spans once the span named `last` has arrived."""
    deadline = time.monotonic() + 20
    while True:
        spans = read_trace(directory, job.trace_id)
        if any(s.name == last for s in spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.2)


def _check_one_tree(spans, root_name: str, caller: str = "") -> None:
    """One tree: the gateway's server span for the submit is the root (its
    parent the caller's span when the caller traces), and every other span's
    parent is in the trace."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id == caller]
    assert [(r.service, r.name, r.kind) for r in roots] == [
        ("fityard-gateway", root_name, "SERVER")
    ]
    orphans = [s.name for s in spans if s.parent_span_id not in ids and s not in roots]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"


def _all_spans(directory) -> list:
    lines = (directory / "spans.jsonl").read_text().splitlines()
    return [Span(**json.loads(line)) for line in lines]


def _transfer(directory, name: str, dataset_id: str):
    """The one span named `name` (for an upload: of `dataset_id`)."""
    deadline = time.monotonic() + 20
    while True:
        found = [s for s in _all_spans(directory) if s.name == name]
        if dataset_id:
            found = [s for s in found if s.attributes.get("fityard.dataset.id") == dataset_id]
        if len(found) == 1 or time.monotonic() > deadline:
            assert len(found) == 1, f"{len(found)} spans named {name}"
            return found[0]
        time.sleep(0.2)


def _children(directory, parent) -> list[str]:
    spans = [s for s in _all_spans(directory) if s.trace_id == parent.trace_id]
    return sorted(s.name for s in spans if s.parent_span_id == parent.span_id)


@pytest.fixture(params=["local", "s3"])
def backend(request):
    """The store's backend, and the environment a stack on it needs."""
    if request.param == "local":
        return "local", {}
    server = request.getfixturevalue("s3_server")
    config = storage_config_for(server.endpoint, f"fityard-{uuid.uuid4().hex[:8]}")
    return "s3", s3_env(config)


def test_a_fit_and_a_predict_are_each_one_trace_across_every_hop(tmp_path, seed_files, backend):
    storage, storage_env = backend
    receiver_port = free_port()
    receiver = span_store.serve(tmp_path / "spans", f"127.0.0.1:{receiver_port}")
    env = {
        **storage_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_port}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        with (
            EmbeddedStack(tmp_path / "data", trainers=1, storage=storage, env=env) as stack,
            Client(stack.address) as client,
        ):
            fit = client.fit(client.upload(seed_files["train"]), max_iter=5).wait(timeout=120)
            test = client.upload(seed_files["test"])
            # The caller traces too: the job's trace continues the caller's
            # (the SDK sends its traceparent).
            with TracerProvider().get_tracer("caller").start_as_current_span("pipeline") as mine:
                predict = client.predict(fit, test.id)
            predict = predict.wait(timeout=120)
            # A stream written with context.write (opentelemetry-python-contrib
            # #3066 breaks those) works: streams are left out of the interceptor.
            saved = client.download(predict, tmp_path / "predictions.parquet")
            assert saved.stat().st_size > 0
            with pytest.raises(NotFound):  # a caller's mistake: a status code, not an error
                client.job("job_0000000000000000000000")
    finally:
        receiver.stop(1)
    assert len(fit.trace_id) == 32 and len(predict.trace_id) == 32
    assert fit.trace_id != predict.trace_id  # one trace per job
    everything = (tmp_path / "spans" / "spans.jsonl").read_text()
    assert "/WatchJob" not in everything  # no span open for a watch's life (hours)
    (missing,) = [
        s
        for s in _all_spans(tmp_path / "spans")
        if s.name == "/fityard.v1.JobService/GetJob"
        and s.attributes["rpc.grpc.status_code"] == 5  # NOT_FOUND
    ]
    assert missing.kind == "SERVER" and missing.status == ""
    assert (
        missing.attributes["rpc.method"] == "GetJob" and missing.attributes["rpc.system"] == "grpc"
    )
    # A transfer is a span of its own that ends with it, its store call under it.
    upload = _transfer(tmp_path / "spans", "/fityard.v1.DatasetService/Upload", test.id)
    assert upload.parent_span_id == "" and upload.service == "fityard-gateway"
    assert upload.attributes["fityard.transfer.bytes"] == seed_files["test"].stat().st_size
    assert _children(tmp_path / "spans", upload) == ["store put"]
    download = _transfer(tmp_path / "spans", "/fityard.v1.JobService/DownloadJobOutput", "")
    assert download.attributes["rpc.grpc.status_code"] == 0
    assert download.attributes["fityard.transfer.bytes"] == saved.stat().st_size
    assert "store get" in _children(tmp_path / "spans", download)

    spans = _spans_of(tmp_path / "spans", fit, "write model")
    _check_one_tree(spans, "/fityard.v1.JobService/SubmitFit")
    assert {s.service for s in spans} == SERVICES
    by_name = {s.name: s for s in spans}
    publish, process = by_name["send jobs"], by_name["process jobs"]
    assert publish.kind == "PRODUCER" and publish.service == "fityard-scheduler"
    assert publish.attributes["messaging.system"] == "nats"
    assert publish.attributes["messaging.operation.type"] == "send"
    assert publish.attributes["messaging.destination.name"].endswith(f".{fit.id}")
    assert process.kind == "CONSUMER" and process.parent_span_id == publish.span_id
    assert process.attributes["messaging.consumer.group.name"] == "trainers"
    assert process.attributes["messaging.message.id"] == fit.id
    assert by_name["worker fit"].parent_span_id == process.span_id
    assert by_name["fit"].attributes["fityard.rows"] == fit.rows
    # The worker's store calls: spans of the backend, under the worker's steps.
    put, get = by_name["store put"], by_name["store get"]
    assert put.parent_span_id == by_name["write model"].span_id
    assert get.parent_span_id == by_name["read dataset"].span_id
    assert put.attributes["fityard.store.backend"] == storage
    assert (
        put.attributes["fityard.object.key"]
        == by_name["write model"].attributes["fityard.object.key"]
    )
    assert put.attributes["fityard.object.size"] > 0
    if storage == "s3":
        assert put.kind == "CLIENT" and put.attributes["aws.s3.bucket"]
    assert any(s.name == "process events" and s.service == "fityard-scheduler" for s in spans)

    spans = _spans_of(tmp_path / "spans", predict, "write predictions")
    assert predict.trace_id == format(mine.get_span_context().trace_id, "032x")
    caller = format(mine.get_span_context().span_id, "016x")
    _check_one_tree(spans, "/fityard.v1.JobService/SubmitPredict", caller=caller)
    names = {s.name for s in spans}
    assert {"send jobs", "process jobs", "worker predict", "predict", "write predictions"} <= names
    assert {"store get", "store put"} <= names


def test_a_job_handed_back_runs_again_as_another_process_span_in_its_trace(tmp_path):
    """A trainer stopped with SIGTERM hands its job back (a nak): the message
    comes again with the same headers, so the next attempt's process span is
    another child of the same publish span, in the job's one trace. The
    stopped attempt's spans are complete: its worker unwinds before exiting."""
    receiver_port = free_port()
    receiver = span_store.serve(tmp_path / "spans", f"127.0.0.1:{receiver_port}")
    env = fault_env(
        tmp_path,
        FITYARD_ACK_WAIT_SECONDS="2",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver_port}",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        with EmbeddedStack(tmp_path / "data", trainers=2, env=env) as stack:
            with Client(stack.address) as client:
                job = fit_of_seconds(client)
                first = wait_for_run(stack, job, 1)
                # The worker has the job (its first progress report): its
                # spans have begun, so there is an attempt to unwind.
                settle(lambda: job.refresh().progress > 0, 60, "the worker's first report")
                stack.process(first).send_signal(signal.SIGTERM)
                stack.process(first).wait(30)
                job = job.wait(timeout=120)
    finally:
        receiver.stop(1)
    assert job.state == "SUCCEEDED" and job.attempts == 2

    spans = _spans_of(tmp_path / "spans", job, "write model")
    _check_one_tree(spans, "/fityard.v1.JobService/SubmitFit")
    [publish] = [s for s in spans if s.name == "send jobs"]
    processes = [s for s in spans if s.name == "process jobs"]
    assert [s.parent_span_id for s in processes] == [publish.span_id] * 2
    trainer_ids = {s.attributes["fityard.trainer.id"] for s in processes}
    assert trainer_ids == {"trainer-1", "trainer-2"}
    # The stopped attempt's worker unwound: its span arrived, marked as an
    # error (the "read dataset" under it is not an orphan).
    workers = sorted((s for s in spans if s.name == "worker fit"), key=lambda s: s.start_ns)
    assert [w.status for w in workers] == ["ERROR", ""]
