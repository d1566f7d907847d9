"""Paging and filters of ListJobs/ListDatasets (services/gateway/listing.py),
without a server: the order a user pages through, what a token is and what
happens to a bad one, and which records a filter keeps.

The same rules against a running stack, with 100 jobs arriving while a
client pages: tests/test_listing.py."""

from __future__ import annotations

import base64
import random
import string

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from fityard.v1 import jobs_pb2
from services.common import errors
from services.gateway.datasets import DATASET_FILTERS
from services.gateway.jobs import JOB_FILTERS
from services.gateway.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page
from services.internal.v1 import records_pb2

FIT, PREDICT = jobs_pb2.JOB_KIND_FIT, jobs_pb2.JOB_KIND_PREDICT
QUEUED, RUNNING = jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_RUNNING
SUCCEEDED, FAILED = jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED


def job(n: int, state=QUEUED, kind=FIT, seconds: int | None = None, **fields):
    """The record of job n (what the gateway pages through), created in
    second 1000 + n // 3 (three jobs share each second)."""
    when = Timestamp(seconds=1000 + n // 3 if seconds is None else seconds)
    return records_pb2.JobRecord(
        id=f"job_{n:04d}", state=state, kind=kind, create_time=when, **fields
    )


def newest_first(records) -> list[str]:
    key = lambda r: (r.create_time.seconds, r.create_time.nanos, r.id)  # noqa: E731
    return [r.id for r in sorted(records, key=key, reverse=True)]


def all_pages(records, size: int, filter_text: str = "", fields=JOB_FILTERS, arriving=()):
    """[[ids of page 1], [ids of page 2], ...]; `arriving` records join
    the list after the first page, as jobs submitted while a client pages."""
    pages, token, records = [], "", list(records)
    while True:
        items, token = page(records, size, token, filter_text, fields)
        pages.append([r.id for r in items])
        records += list(arriving)
        arriving = ()
        if not token:
            return pages


def refusal(records, size=10, token="", filter_text="", fields=JOB_FILTERS) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as raised:
        page(records, size, token, filter_text, fields)
    return raised.value


def violated_fields(error: errors.ApiError) -> list[str]:
    """The fields of the BadRequest detail the client receives."""
    return [
        v.field
        for d in error.details
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    ]


# -- order and pages -------------------------------------------------------------


def test_pages_are_newest_first_and_cover_every_record_once():
    records = [job(n) for n in range(50)]
    random.Random(1).shuffle(records)  # the store's order is not the page order
    pages = all_pages(records, 7)
    assert [len(p) for p in pages] == [7] * 7 + [1]
    assert sum(pages, []) == newest_first(records)


def test_jobs_created_in_the_same_instant_are_ordered_by_id_across_page_boundaries():
    # Twelve jobs of one second (and nanosecond), pages of five: ties
    # straddle both boundaries; none may be skipped or shown twice.
    records = [job(n, seconds=5000) for n in range(12)]
    random.Random(2).shuffle(records)
    assert sum(all_pages(records, 5), []) == [f"job_{n:04d}" for n in reversed(range(12))]


def test_nanoseconds_order_jobs_of_the_same_second():
    early = job(1, seconds=7)
    late = job(0, seconds=7)
    late.create_time.nanos = 5
    assert all_pages([early, late], 1) == [[late.id], [early.id]]


def test_pages_stay_stable_while_newer_records_arrive():
    before = [job(n) for n in range(50)]
    newer = [job(n) for n in range(50, 80)]
    assert sum(all_pages(before, 7, arriving=newer), []) == newest_first(before)


def test_a_record_gone_between_pages_does_not_shift_the_next_page():
    records = [job(n) for n in range(10)]
    first, token = page(records, 4, "", "", JOB_FILTERS)
    remaining = [r for r in records if r.id != first[-1].id]  # the last one seen is deleted
    second, _ = page(remaining, 4, token, "", JOB_FILTERS)
    assert [r.id for r in second] == newest_first(records)[4:8]


def test_the_last_page_has_no_token_even_when_it_is_full():
    pages = all_pages([job(n) for n in range(6)], 3)
    assert [len(p) for p in pages] == [3, 3]  # no empty third page
    assert page([], 3, "", "", JOB_FILTERS) == ([], "")


def test_page_size_zero_is_the_default_and_a_huge_one_is_capped():
    records = [job(n) for n in range(MAX_PAGE_SIZE + 5)]
    items, token = page(records, 0, "", "", JOB_FILTERS)
    assert len(items) == DEFAULT_PAGE_SIZE and token
    items, token = page(records, 10**9, "", "", JOB_FILTERS)
    assert len(items) == MAX_PAGE_SIZE and token


def test_a_negative_page_size_is_refused_naming_page_size():
    error = refusal([job(1)], size=-1)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["page_size"]
    assert error.message.startswith("page_size: ") and "-1" in error.message


# -- tokens ------------------------------------------------------------------------


def test_a_token_is_url_safe_and_names_no_offset():
    _, token = page([job(n) for n in range(5)], 2, "", "kind=fit", JOB_FILTERS)
    assert token and set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert not token.isdigit()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "2",  # an offset, as the old API took
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
        base64.urlsafe_b64encode(b"{}").decode(),  # JSON, the wrong shape
        base64.urlsafe_b64encode(b'[1, 2, "job_0001"]').decode(),  # one part short
        base64.urlsafe_b64encode(b'["1", 2, "job_0001", ""]').decode(),  # wrong types
    ],
)
def test_a_token_the_server_did_not_issue_is_refused_naming_page_token(token):
    error = refusal([job(n) for n in range(5)], token=token)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["page_token"]
    assert error.message.startswith("page_token: ") and "omit it" in error.message


def test_a_token_is_valid_only_with_the_filter_it_was_issued_for():
    records = [job(n) for n in range(5)]
    _, token = page(records, 2, "", "kind=fit", JOB_FILTERS)
    error = refusal(records, size=2, token=token, filter_text="")
    assert violated_fields(error) == ["page_token"]
    assert "another filter" in error.message
    page(records, 2, token, "kind=fit", JOB_FILTERS)  # with its own filter it works


def test_an_altered_token_is_refused_or_read_as_a_position_never_a_crash():
    records = [job(n) for n in range(20)]
    _, token = page(records, 5, "", "state=QUEUED", JOB_FILTERS)
    for i in range(len(token)):
        for replacement in "A_9":
            altered = token[:i] + replacement + token[i + 1 :]
            try:
                page(records, 5, altered, "state=QUEUED", JOB_FILTERS)
            except errors.ApiError as exc:
                assert violated_fields(exc) == ["page_token"], altered


def test_a_token_needs_no_server_state_and_no_store_order():
    # A page asked of another gateway, or after a restart, reading the
    # records in another order, continues where the token left off.
    records = [job(n) for n in range(9)]
    _, token = page(records, 3, "", "", JOB_FILTERS)
    second, _ = page(list(reversed(records)), 3, token, "", JOB_FILTERS)
    assert [r.id for r in second] == newest_first(records)[3:6]


# -- filters -----------------------------------------------------------------------


def jobs_of_every_kind() -> list[records_pb2.JobRecord]:
    states = [QUEUED, RUNNING, SUCCEEDED, FAILED]
    return [
        job(n, state=states[n % 4], kind=[FIT, PREDICT][n % 3 == 0], dataset_id=f"ds_{n % 2}")
        for n in range(40)
    ]


@pytest.mark.parametrize(
    "filter_text, keep",
    [
        ("state=SUCCEEDED AND kind=FIT", lambda j: j.state == SUCCEEDED and j.kind == FIT),
        ("state=succeeded AND kind=fit", lambda j: j.state == SUCCEEDED and j.kind == FIT),
        ("kind=predict", lambda j: j.kind == PREDICT),
        ('dataset_id="ds_1"', lambda j: j.dataset_id == "ds_1"),
        (
            "  dataset_id = ds_0   AND   state = FAILED ",
            lambda j: j.dataset_id == "ds_0" and j.state == FAILED,
        ),
        ("", lambda j: True),
        ("   ", lambda j: True),
        ("state=CANCELLED", lambda j: False),
    ],
)
def test_a_filter_keeps_exactly_the_matching_jobs_on_every_page(filter_text, keep):
    records = jobs_of_every_kind()
    pages = all_pages(records, 3, filter_text)
    assert sum(pages, []) == newest_first(r for r in records if keep(r))


def test_a_fits_model_id_filter_finds_its_predictions():
    records = [job(n, kind=PREDICT, model_id=f"job_{n % 3:04d}") for n in range(10)]
    assert sum(all_pages(records, 4, "model_id=job_0001"), []) == newest_first(records[1::3])


def test_datasets_filter_by_name():
    datasets = [
        records_pb2.DatasetRecord(id=f"ds_{n}", name=f"{['train', 'test'][n % 2]}.parquet")
        for n in range(6)
    ]
    for n, d in enumerate(datasets):
        d.create_time.seconds = n
    pages = all_pages(datasets, 2, "name=test.parquet", fields=DATASET_FILTERS)
    assert sum(pages, []) == ["ds_5", "ds_3", "ds_1"]


@pytest.mark.parametrize(
    "filter_text, says",
    [
        ("colour=red", "cannot filter on 'colour'; fields: state, kind, dataset_id, model_id"),
        ("state", "'state' is not a condition; write field=value, joined by ' AND '"),
        ("state=", "'state=' is not a condition"),
        ("=RUNNING", "'=RUNNING' is not a condition"),
        ("state=RUNNING AND ", "'' is not a condition"),
        ("kind=fit AND colour=red", "cannot filter on 'colour'"),
        # lower-case "and" would otherwise read as one value and match nothing
        ("state=RUNNING and kind=fit", "holds more than one condition; join them with ' AND '"),
        # a typo in a value of a fixed set would also match nothing
        (
            "state=SUCEEDED",
            "state cannot be 'SUCEEDED'; it is one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED",
        ),
        ("kind=train", "kind cannot be 'train'; it is one of fit, predict"),
    ],
)
def test_a_bad_filter_is_refused_naming_filter_and_what_to_write(filter_text, says):
    error = refusal([job(1)], filter_text=filter_text)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["filter"]
    assert error.message.startswith("filter: ") and says in error.message


def test_a_dataset_filter_lists_the_dataset_fields():
    error = refusal([], filter_text="state=RUNNING", fields=DATASET_FILTERS)
    assert error.message == "filter: cannot filter on 'state'; fields: name, sha256"


def test_a_bad_filter_is_refused_even_when_nothing_would_match():
    # The error does not depend on the records: a typo is caught on an empty list too.
    assert violated_fields(refusal([], filter_text="stat=RUNNING")) == ["filter"]
