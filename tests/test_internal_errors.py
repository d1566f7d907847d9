"""An internal error tells the user what happened and an error id, and
nothing of the inside (no path, key, bucket or exception class); the
service's log has all of it under the same id. Triggered for real, by damage
done behind the stack's back: a dataset file deleted from the store, a
record in NATS KV overwritten with garbage."""

from __future__ import annotations

import asyncio
import re
import time

import nats
import pandas as pd
import pytest

from fityard import Client, FityardError, JobFailed
from services.common import bus
from services.common.config import DEFAULT_TENANT
from services.embedded import EmbeddedStack

pytestmark = pytest.mark.stack

ERROR_ID = re.compile(r"err_[0-9a-f]{12}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(tmp_path_factory.mktemp("internal"), trainers=1) as running:
        yield running


def _assert_hidden_but_logged(stack, log_name: str, message: str, inside: list[str]) -> None:
    """`message` has an error id and none of `inside`; a line of the log
    has the id, and the lines from it have all of `inside`."""
    (error_id,) = ERROR_ID.findall(message)
    for text in inside:
        assert text not in message, text
    deadline = time.monotonic() + 10
    while True:
        log = stack.log_tail(log_name, 400)
        if error_id in log or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert error_id in log, f"no line of the {log_name} log has {error_id}"
    logged = log[log.index(error_id) :]
    for text in inside:
        assert text in logged, text


def test_a_failing_rpc_gives_an_error_id_and_the_log_the_rest(stack):
    dataset_id = "ds_0123456789abcdef0123"

    async def damage() -> None:
        nc = await nats.connect(stack.nats_url)
        try:
            datasets = await nc.jetstream().key_value(bus.DATASETS_BUCKET)
            await datasets.put(bus.record_key(DEFAULT_TENANT, dataset_id), b"\xff not a record")
        finally:
            await nc.close()

    asyncio.run(damage())
    with Client(stack.address) as client:
        with pytest.raises(FityardError) as failed:
            client.dataset(dataset_id)
        assert failed.value.code.name == "INTERNAL"
        assert "internal error while answering this request" in failed.value.message
        assert failed.value.details  # the ErrorInfo with the id, for programs
        client.upload(pd.DataFrame({"col_0": [1.0, 2.0], "y": [0, 1]}))  # still serving
    _assert_hidden_but_logged(stack, "gateway", failed.value.message, ["DecodeError"])


def test_a_job_failing_inside_gives_an_error_id_and_the_log_the_rest(stack):
    frame = pd.DataFrame({"col_0": [0.5, 1.0, 2.0, 3.0] * 10, "y": [0, 1] * 20})
    with Client(stack.address) as client:
        dataset = client.upload(frame, name="lost.parquet")
        (stored,) = (stack.data_dir / "objects").rglob(f"datasets/{dataset.id}.parquet")
        stored.unlink()  # lost by the store
        with pytest.raises(JobFailed) as failed:
            client.fit(dataset, max_iter=5).wait(timeout=120)
    error = failed.value.job.error
    assert "internal error while running the job" in error
    key = f"tenants/{DEFAULT_TENANT}/datasets/{dataset.id}.parquet"
    _assert_hidden_but_logged(stack, "trainer-1", error, ["ObjectNotFound", key])
