"""Property-based tests (hypothesis) against a running stack: uploads cut
into random chunks, with lying headers, of random bytes, truncated or
corrupted Parquet; and every RPC's request fields filled at random. Each
call ends with a status a client can act on (never UNKNOWN or INTERNAL),
a refused upload leaves nothing in the store, and the gateway keeps serving.

Examples are derandomized (the same ones every run), so CI is repeatable;
`FITYARD_FUZZ_EXAMPLES` raises how many for a longer hunt."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fityard.v1 import datasets_pb2, datasets_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from services.common.storage.local import TMP_DIR
from services.embedded import EmbeddedStack

pytestmark = pytest.mark.stack

EXAMPLES = int(os.environ.get("FITYARD_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What a client may be told; UNKNOWN or INTERNAL would mean a crash.
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.DATA_LOSS,
}


def _parquet(rows: int = 50) -> bytes:
    table = pa.table({"col_0": [float(i) for i in range(rows)], "y": [i % 2 for i in range(rows)]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


VALID = _parquet()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(tmp_path_factory.mktemp("fuzz"), trainers=1) as running:
        yield running


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def gateway_rss(stack):
    """The gateway's resident memory before the fuzzing."""
    return _rss_mib(stack.pid("gateway"))


@pytest.fixture(scope="module")
def stubs(stack, gateway_rss):
    with grpc.insecure_channel(stack.address) as channel:
        yield datasets_pb2_grpc.DatasetServiceStub(channel), jobs_pb2_grpc.JobServiceStub(channel)


def _objects(stack) -> set[str]:
    root = stack.data_dir / "objects"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _upload(stub, header: datasets_pb2.UploadHeader, data: bytes, cuts: list[int]):
    """Upload `data` cut at `cuts`; (code, response or None)."""
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    requests = [datasets_pb2.UploadRequest(header=header)]
    requests += [datasets_pb2.UploadRequest(chunk=p) for p in pieces]
    try:
        return grpc.StatusCode.OK, stub.Upload(iter(requests), timeout=30)
    except grpc.RpcError as error:
        return error.code(), None


def _still_serving(stub) -> None:
    stub.ListDatasets(datasets_pb2.ListDatasetsRequest(page_size=1), timeout=10)


@FUZZ
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(VALID)), max_size=30))
def test_a_file_in_any_chunking_is_stored_whole(stack, stubs, cuts):
    code, response = _upload(stubs[0], datasets_pb2.UploadHeader(name="f.parquet"), VALID, cuts)
    assert code == grpc.StatusCode.OK
    assert response.dataset.sha256 == hashlib.sha256(VALID).hexdigest()


def _mangled():
    """Bytes that are not a whole Parquet file, and how they were made."""
    truncated = st.integers(min_value=0, max_value=len(VALID) - 1).map(
        lambda n: ("truncated", VALID[:n])
    )
    corrupted = st.tuples(
        st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(1, 255)
    ).map(lambda c: ("corrupted", VALID[: c[0]] + bytes([VALID[c[0]] ^ c[1]]) + VALID[c[0] + 1 :]))
    noise = st.binary(max_size=4096).map(lambda b: ("random", b))
    return st.one_of(truncated, corrupted, noise)


@FUZZ
@given(case=_mangled(), cuts=st.lists(st.integers(min_value=0, max_value=8192), max_size=8))
def test_broken_bytes_are_refused_and_leave_nothing(stack, stubs, case, cuts):
    kind, data = case
    before = _objects(stack)
    code, _ = _upload(stubs[0], datasets_pb2.UploadHeader(name="b.parquet"), data, cuts)
    assert code in ANSWERS, (kind, code)
    if kind != "corrupted":  # a flipped bit in a data page can still be a readable file
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (kind, code)
    if code != grpc.StatusCode.OK:
        after = {o for o in _objects(stack) if not o.startswith(TMP_DIR)}
        assert after == {o for o in before if not o.startswith(TMP_DIR)}
    _still_serving(stubs[0])


@FUZZ
@given(
    name=st.text(max_size=300),
    size=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    sha=st.text(alphabet="0123456789abcdefxyz", max_size=70),
)
def test_lying_headers_are_refused_naming_the_field(stack, stubs, name, size, sha):
    header = datasets_pb2.UploadHeader(name=name, size_bytes=size, sha256=sha)
    honest = (
        bool(name)
        and size in (0, len(VALID))
        and sha in ("", hashlib.sha256(VALID).hexdigest())
        and len(name.encode()) <= 1024
    )
    code, _ = _upload(stubs[0], header, VALID, [])
    assert code in ANSWERS
    if not honest:
        assert code != grpc.StatusCode.OK
    _still_serving(stubs[0])


ids = st.one_of(st.text(max_size=80), st.sampled_from(["ds_1", "job_1", "x" * 65, "../x", ""]))


@FUZZ
@given(
    dataset_id=ids,
    job_id=ids,
    page_size=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    page_token=st.text(max_size=100),
    filter_text=st.text(max_size=100),
    max_iter=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    learning_rate=st.floats(allow_nan=True, allow_infinity=True),
    early_stopping=st.text(max_size=10),
    timeout=st.floats(allow_nan=True, allow_infinity=True),
    priority=st.integers(min_value=0, max_value=5),
)
def test_every_rpc_answers_random_fields_with_a_status_to_act_on(
    stack,
    stubs,
    dataset_id,
    job_id,
    page_size,
    page_token,
    filter_text,
    max_iter,
    learning_rate,
    early_stopping,
    timeout,
    priority,
):
    d, j = stubs
    params = jobs_pb2.FitParams(
        max_iter=max_iter, learning_rate=learning_rate, early_stopping=early_stopping
    )
    calls = [
        lambda: d.GetDataset(datasets_pb2.GetDatasetRequest(dataset_id=dataset_id), timeout=10),
        lambda: d.ListDatasets(
            datasets_pb2.ListDatasetsRequest(
                page_size=page_size, page_token=page_token, filter=filter_text
            ),
            timeout=10,
        ),
        lambda: list(
            d.DownloadDataset(
                datasets_pb2.DownloadDatasetRequest(dataset_id=dataset_id), timeout=10
            )
        ),
        lambda: d.DeleteDataset(
            datasets_pb2.DeleteDatasetRequest(dataset_id=dataset_id), timeout=10
        ),
        lambda: j.SubmitFit(
            jobs_pb2.SubmitFitRequest(
                dataset_id=dataset_id, params=params, timeout_seconds=timeout, priority=priority
            ),
            timeout=10,
        ),
        lambda: j.SubmitPredict(
            jobs_pb2.SubmitPredictRequest(
                model_id=job_id, dataset_id=dataset_id, timeout_seconds=timeout, priority=priority
            ),
            timeout=10,
        ),
        lambda: j.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=10),
        lambda: list(j.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), timeout=10)),
        lambda: j.ListJobs(
            jobs_pb2.ListJobsRequest(
                page_size=page_size, page_token=page_token, filter=filter_text
            ),
            timeout=10,
        ),
        lambda: j.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id), timeout=10),
        lambda: list(
            j.DownloadJobOutput(
                jobs_pb2.DownloadJobOutputRequest(job_id=job_id, output=priority % 4), timeout=10
            )
        ),
        lambda: j.DeleteJob(jobs_pb2.DeleteJobRequest(job_id=job_id), timeout=10),
    ]
    for number, call in enumerate(calls):
        try:
            call()
        except grpc.RpcError as error:
            assert error.code() in ANSWERS, (number, error.code(), error.details())
    _still_serving(d)


def test_the_gateway_memory_stayed_bounded(stack, gateway_rss):
    """After every example above (thousands of calls, broken uploads among
    them), the gateway holds no more than a little: nothing accumulates."""
    assert _rss_mib(stack.pid("gateway")) - gateway_rss < 64
