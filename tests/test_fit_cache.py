"""The fit cache on a real stack: the seed's example_2 (20 fits of the same
data) with random_state=0 trains once and answers 19 from the cache, each
answer a SUCCEEDED job whose model is the trained one; without a fixed
random_state, or with cache=False, every fit trains; a fit waiting for a
cancelled fit trains on its own, one waiting for a failing fit fails with
its error."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fityard import Client, JobFailed
from fityard.v1 import jobs_pb2
from services.common.config import DEFAULT_TENANT
from services.common.records import new_record_id
from services.embedded import EmbeddedStack
from services.internal.v1 import records_pb2
from tests.support.jobs import cores_taken, put_record

pytestmark = pytest.mark.stack

WAIT = 180
QUICK = {"max_iter": 5}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(tmp_path_factory.mktemp("fit-cache"), trainers=1) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack):
    with Client(stack.address) as connected:
        yield connected


def _trained_models(stack) -> set[str]:
    """Fit jobs with a model in the store (each trained fit writes one)."""
    return {p.parent.name for p in (stack.data_dir / "objects").rglob("models/*/attempt-*.joblib")}


def test_example_2_with_a_fixed_random_state_trains_once(stack, client, seed_files, tmp_path):
    train, test = client.upload(seed_files["train"]), client.upload(seed_files["test"])
    jobs = [client.fit(train, random_state=0, **QUICK) for _ in range(20)]
    jobs = [job.wait(timeout=WAIT) for job in jobs]
    assert {job.state for job in jobs} == {"SUCCEEDED"}
    [trained] = [job for job in jobs if not job.cached]
    cached = [job for job in jobs if job.cached]
    assert len(cached) == 19 and {job.cached_from for job in cached} == {trained.id}
    assert {job.attempts for job in cached} == {0}  # no trainer ran them
    assert trained.id in _trained_models(stack)
    assert not {job.id for job in cached} & _trained_models(stack)

    # Once it has succeeded, a cached answer is immediate.
    again = client.fit(train, random_state=0, **QUICK)
    assert (again.state, again.cached_from) == ("SUCCEEDED", trained.id)

    # A cached job is a model like any other: the same file, the same predictions.
    model = client.download(trained, tmp_path / "trained.joblib", progress=False)
    copy = client.download(again, tmp_path / "cached.joblib", progress=False)
    assert copy.read_bytes() == model.read_bytes()
    by_trained = client.predict(trained, test).wait(timeout=WAIT)
    by_cached = client.predict(again, test).wait(timeout=WAIT)
    frames = [
        pd.read_parquet(client.download(job, tmp_path / f"{job.id}.parquet", progress=False))
        for job in (by_trained, by_cached)
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_without_a_fixed_random_state_or_with_cache_off_every_fit_trains(client, seed_files):
    train = client.upload(seed_files["train"])
    free = [client.fit(train, **QUICK).wait(timeout=WAIT) for _ in range(2)]
    assert [job.cached for job in free] == [False, False]
    first = client.fit(train, random_state=1, **QUICK).wait(timeout=WAIT)
    forced = client.fit(train, random_state=1, cache=False, **QUICK).wait(timeout=WAIT)
    other = client.fit(train, random_state=1, max_iter=6).wait(timeout=WAIT)
    assert (first.cached, forced.cached, other.cached) == (False, False, False)
    assert client.fit(train, random_state=1, **QUICK).cached_from == first.id


def test_a_fit_waiting_for_a_cancelled_fit_trains_on_its_own(client, seed_files):
    train = client.upload(seed_files["train"])
    # Both wait QUEUED (batch jobs wait for a core) until the first is cancelled.
    with cores_taken(client, train.id):
        first = client.fit(train, random_state=2, priority="batch", **QUICK)
        waiting = client.fit(train, random_state=2, priority="batch", **QUICK)
        assert waiting.state == "QUEUED" and waiting.cached_from == first.id
        first.cancel()
    done = waiting.wait(timeout=WAIT)
    assert (done.state, done.cached, done.attempts) == ("SUCCEEDED", False, 1)


def test_a_fit_waiting_for_a_failing_fit_fails_with_its_error(client, seed_files):
    one_class = client.upload(seed_files["one_class_train"])
    # The first stays QUEUED (a batch job waits for a core) until the second
    # has joined it; it would fail in a moment otherwise.
    with cores_taken(client, client.upload(seed_files["train"]).id):
        first = client.fit(one_class, random_state=3, priority="batch", **QUICK)
        waiting = client.fit(one_class, random_state=3, priority="batch", **QUICK)
        assert waiting.cached_from == first.id
    with pytest.raises(JobFailed):
        first.wait(timeout=WAIT)
    with pytest.raises(JobFailed) as failed:
        waiting.wait(timeout=WAIT)
    assert failed.value.job.cached_from == first.id
    assert f"the same fit, jobs/{first.id}, failed:" in failed.value.job.error
    assert first.refresh().error in failed.value.job.error


def test_a_waiting_fit_left_behind_by_a_dead_scheduler_is_settled_by_reconciliation(
    tmp_path_factory, seed_files
):
    """The state a scheduler killed between recording a waiting fit and
    joining it to its fit's followers leaves (written here as it would
    be): the fit has succeeded, the waiting one is QUEUED and no one will
    settle it, but reconciliation does."""
    env = {"FITYARD_RECONCILE_SECONDS": "1"}
    with (
        EmbeddedStack(tmp_path_factory.mktemp("fit-cache-orphan"), trainers=1, env=env) as stack,
        Client(stack.address) as client,
    ):
        train = client.upload(seed_files["train"])
        trained = client.fit(train, random_state=4, **QUICK).wait(timeout=WAIT)
        orphan = records_pb2.JobRecord(
            id=new_record_id("job")[0],
            kind=jobs_pb2.JOB_KIND_FIT,
            state=jobs_pb2.JOB_STATE_QUEUED,
            dataset_id=train.id,
            params=jobs_pb2.FitParams(random_state=4, max_iter=5),
            tenant=DEFAULT_TENANT,
            lane="small",
            cached_from=trained.id,
            # older than reconciliation's grace for records still being published
            create_time=Timestamp(seconds=int(time.time()) - 60),
        )
        put_record(stack.nats_url, orphan)
        settled = client.job(orphan.id).wait(timeout=30)
    assert (settled.state, settled.cached_from) == ("SUCCEEDED", trained.id)
