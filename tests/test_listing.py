"""Listing jobs and datasets against a stack: stable pages while jobs keep
arriving, and filters that return exactly the matching records (the paging
rules themselves, without a server: tests/test_listing_unit.py)."""

from __future__ import annotations

import threading

import grpc
import pandas as pd
import pytest

from fityard import Client, InvalidArgument
from fityard.v1 import jobs_pb2, jobs_pb2_grpc

pytestmark = pytest.mark.stack

WAIT_SECONDS = 120


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
