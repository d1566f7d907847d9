"""Listing jobs and datasets: stable pages while jobs keep arriving, and
filters that return exactly the matching records."""

from __future__ import annotations

import threading

import grpc
import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fityard import Client, InvalidArgument
from fityard.v1 import jobs_pb2, jobs_pb2_grpc
from services.common import errors
from services.gateway.jobs import JOB_FILTERS
from services.gateway.listing import page

WAIT_SECONDS = 120


# -- the paging rules, without a server -------------------------------------------


def _job(n: int, state=jobs_pb2.JOB_STATE_QUEUED, kind=jobs_pb2.JOB_KIND_FIT) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        id=f"job_{n:04d}", state=state, kind=kind, create_time=Timestamp(seconds=1000 + n // 3)
    )


def _all_pages(records, size: int, filter_text: str = "", arriving=()) -> list[str]:
    """Ids over every page; `arriving` records join the list after the first page."""
    seen, token, records = [], "", list(records)
    while True:
        items, token = page(records, size, token, filter_text, JOB_FILTERS)
        seen += [r.id for r in items]
        records += list(arriving)
        arriving = ()
        if not token:
            return seen


def test_pages_are_newest_first_and_stable_while_records_arrive():
    before = [_job(n) for n in range(50)]
    newer = [_job(n) for n in range(50, 80)]
    seen = _all_pages(before, 7, arriving=newer)
    assert seen == [
        j.id for j in sorted(before, key=lambda j: (j.create_time.seconds, j.id), reverse=True)
    ]


def test_filters_keep_exactly_the_matching_records():
    records = [
        _job(n, state=[jobs_pb2.JOB_STATE_RUNNING, jobs_pb2.JOB_STATE_FAILED][n % 2])
        for n in range(20)
    ]
    records += [_job(n, kind=jobs_pb2.JOB_KIND_PREDICT) for n in range(20, 25)]
    running = _all_pages(records, 3, "state=RUNNING AND kind=fit")
    assert sorted(running) == sorted(r.id for r in records[:20:2])
    assert len(_all_pages(records, 3, "kind=predict")) == 5


@pytest.mark.parametrize(
    "filter_text, token, field",
    [
        ("colour=red", "", "filter"),
        ("state", "", "filter"),
        ("", "not-a-token", "page_token"),
    ],
)
def test_bad_filters_and_tokens_name_the_field(filter_text, token, field):
    with pytest.raises(errors.ApiError) as raised:
        page([_job(1)], 10, token, filter_text, JOB_FILTERS)
    assert raised.value.message.startswith(f"{field}: ")


def test_a_token_is_valid_only_with_its_filter():
    _, token = page([_job(n) for n in range(5)], 2, "", "kind=fit", JOB_FILTERS)
    with pytest.raises(errors.ApiError) as raised:
        page([_job(n) for n in range(5)], 2, token, "", JOB_FILTERS)
    assert "another filter" in raised.value.message


# -- against a stack --------------------------------------------------------------


def test_list_jobs_pages_are_stable_while_100_jobs_are_submitted(local_stack):
    with Client(local_stack.address) as client:
        dataset = client.upload(
            pd.DataFrame({"col_0": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]}), name="tiny.parquet"
        )
        existing = {j.id for j in client.jobs()}
        with grpc.insecure_channel(local_stack.address) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            first = stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=3))
            failures: list[BaseException] = []

            def submit_100() -> None:
                try:
                    for _ in range(100):
                        client.fit(dataset, max_iter=1)
                except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                    failures.append(exc)

            submitter = threading.Thread(target=submit_100)
            submitter.start()
            seen, token = [j.id for j in first.jobs], first.next_page_token
            while token:
                response = stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=3, page_token=token))
                seen += [j.id for j in response.jobs]
                token = response.next_page_token
            submitter.join()
        assert failures == []
        assert len(seen) == len(set(seen))  # nothing twice
        assert set(seen) == existing  # nothing missed, nothing newer than the first page

        fits = client.jobs(dataset=dataset)
        assert len(fits) == 100 and {j.dataset_id for j in fits} == {dataset.id}
        for job in fits:
            job.wait(timeout=WAIT_SECONDS)
        assert {j.id for j in client.jobs(dataset=dataset, state="SUCCEEDED", kind="fit")} == {
            j.id for j in fits
        }
        assert client.jobs(dataset=dataset, kind="predict") == []
        assert [d.id for d in client.datasets(name="tiny.parquet")][0] == dataset.id
        with pytest.raises(InvalidArgument) as refused:
            client._pages(
                client._jobs.ListJobs, jobs_pb2.ListJobsRequest, "jobs", colour="red"
            ).__next__()
        assert refused.value.field_violations[0][0] == "filter"
