"""Reading a page of ListJobs/ListDatasets from the KV bucket
(services/gateway/listing.py read_page), without a server: time-ordered ids
make key order the list's order, so a page without a filter reads the keys
and that page's records only, and gives the same pages and tokens as reading
everything. The bucket is a dictionary behind the calls read_page makes."""

from __future__ import annotations

import asyncio
import random

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fityard.v1 import jobs_pb2
from services.common.records import id_time, new_record_id
from services.gateway import listing
from services.gateway.jobs import JOB_FILTERS
from services.internal.v1 import records_pb2
from tests.support.fake_kv import TENANT, FakeBucket


@pytest.fixture
def bucket(monkeypatch) -> FakeBucket:
    """A bucket that read_page lists through the same two calls it makes on NATS."""
    fake = FakeBucket()

    async def record_ids(kv, tenant):
        ids = [key.split(".", 1)[1] for key in kv.values] + kv.gone
        random.Random(len(ids)).shuffle(ids)  # the stream's order is no order
        return ids

    async def list_records(kv, tenant, cls):
        kv.full_reads += 1
        return [cls.FromString(v) for v in kv.values.values()]

    monkeypatch.setattr(listing, "record_ids", record_ids)
    monkeypatch.setattr(listing, "list_records", list_records)
    return fake


def _job(seconds: int, micros: int = 0, state=jobs_pb2.JOB_STATE_QUEUED) -> records_pb2.JobRecord:
    """A job with a time-ordered id made at that time, as the scheduler makes it."""
    when = seconds * 1_000_000 + micros
    job_id = f"job_{when:013x}{random.getrandbits(28):07x}"
    return records_pb2.JobRecord(id=job_id, state=state, create_time=id_time(job_id))


def _read(bucket, size, token="", filter_text=""):
    return asyncio.run(
        listing.read_page(
            bucket, TENANT, records_pb2.JobRecord, size, token, filter_text, JOB_FILTERS
        )
    )


def _pages(bucket, size, filter_text="", arriving=()) -> list[list[str]]:
    pages, token = [], ""
    while True:
        items, token = _read(bucket, size, token, filter_text)
        pages.append([r.id for r in items])
        for record in arriving:
            bucket.add(record)
        arriving = ()
        if not token:
            return pages


# -- ids --------------------------------------------------------------------------


def test_a_new_id_carries_its_create_time_and_ids_sort_as_records_were_created():
    made = [new_record_id("job") for _ in range(200)]
    for record_id, created in made:
        assert id_time(record_id) == created and created.nanos % 1000 == 0
    by_id = sorted(made, key=lambda m: m[0])
    by_time = sorted(made, key=lambda m: (m[1].seconds, m[1].nanos, m[0]))
    assert by_id == by_time


@pytest.mark.parametrize(
    "record_id", ["job_5b0c9e7d1a2f3e4d", "job_zz0f9693f935c20d9b60", "job660f9693f935c20d9b60"]
)
def test_an_id_of_another_shape_carries_no_time(record_id):
    assert id_time(record_id) is None


# -- pages from keys ----------------------------------------------------------------


def test_a_page_reads_the_keys_and_only_its_own_records(bucket):
    for n in range(500):
        bucket.add(_job(1000 + n // 4, micros=n))
    items, token = _read(bucket, 10)
    assert len(items) == 10 and token
    assert bucket.gets == 10 and bucket.full_reads == 0


def test_pages_from_keys_are_the_pages_of_the_whole_list(bucket):
    # Several jobs per second, some in the same microsecond.
    records = [_job(1000 + n // 5, micros=n // 2) for n in range(60)]
    for record in records:
        bucket.add(record)
    expected, token = [], ""
    while True:
        items, token = listing.page(records, 7, token, "", JOB_FILTERS)
        expected.append([r.id for r in items])
        if not token:
            break
    assert _pages(bucket, 7) == expected
    assert bucket.full_reads == 0


def test_pages_are_stable_while_jobs_arrive(bucket):
    before = [_job(1000 + n) for n in range(40)]
    for record in before:
        bucket.add(record)
    newer = [_job(2000 + n) for n in range(25)]
    seen = [i for p in _pages(bucket, 6, arriving=newer) for i in p]
    newest_first = sorted(before, key=lambda r: r.id, reverse=True)
    assert seen == [r.id for r in newest_first]


def test_a_deleted_record_is_passed_over_and_the_page_filled_from_the_next(bucket):
    records = [_job(1000 + n) for n in range(10)]
    for record in records:
        bucket.add(record)
    newest = sorted(records, key=lambda r: r.id, reverse=True)
    bucket.gone = [_job(1005, micros=1).id, _job(1009, micros=1).id]  # keys without records
    items, token = _read(bucket, 4)
    assert [r.id for r in items] == [r.id for r in newest[:4]]
    rest = [i for p in _pages(bucket, 4) for i in p]
    assert rest == [r.id for r in newest]


def test_a_token_from_keys_is_a_token_of_the_whole_list(bucket):
    records = [_job(1000 + n) for n in range(9)]
    for record in records:
        bucket.add(record)
    _, from_keys = _read(bucket, 4)
    _, from_all = listing.page(records, 4, "", "", JOB_FILTERS)
    assert from_keys == from_all


# -- when every record is read ----------------------------------------------------


def test_a_filtered_page_reads_every_record(bucket):
    for n in range(12):
        state = jobs_pb2.JOB_STATE_RUNNING if n % 3 == 0 else jobs_pb2.JOB_STATE_QUEUED
        bucket.add(_job(1000 + n, state=state))
    items, token = _read(bucket, 100, filter_text="state=RUNNING")
    assert len(items) == 4 and token == ""
    assert bucket.full_reads == 1


def test_records_from_before_time_ordered_ids_are_read_whole_and_ordered_by_time(bucket):
    old = records_pb2.JobRecord(id="job_5b0c9e7d1a2f3e4d", create_time=Timestamp(seconds=500))
    bucket.add(old)
    records = [_job(1000 + n) for n in range(5)]
    for record in records:
        bucket.add(record)
    pages = _pages(bucket, 4)
    assert [i for p in pages for i in p][-1] == old.id  # the oldest, last
    assert bucket.full_reads == len(pages)
