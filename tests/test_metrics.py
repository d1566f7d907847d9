"""/metrics of a running stack: scraped before and after known work, the
counters move by exactly what was done, the queue shows what waits, and
every metric the Grafana dashboard queries exists."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fityard import Client, JobFailed, NotFound
from services.embedded import EmbeddedStack
from tests.support.jobs import long_fit, wait_for_state

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "fityard.json"

Samples = dict[tuple[str, frozenset], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def rpc(method: str, code: str = "OK", service: str = "fityard.v1.JobService") -> dict:
    kind = "unary"
    if method in ("Upload",):
        kind = "client_stream"
    elif method in ("WatchJob", "DownloadJobOutput", "DownloadDataset"):
        kind = "server_stream"
    return {"grpc_service": service, "grpc_method": method, "grpc_type": kind, "grpc_code": code}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedStack(
        tmp_path_factory.mktemp("metrics"), trainers=1, predictors=1, metrics=True
    ) as running:
        yield running


def test_counters_move_by_exactly_the_work_done(stack, seed_files, tmp_path):
    scheduler, gateway = stack.metrics_url("scheduler"), stack.metrics_url("gateway")
    s0, g0 = scrape(scheduler), scrape(gateway)
    with Client(stack.address) as client:
        train = client.upload(seed_files["train"])
        bad = client.upload(seed_files["one_class_train"])
        test = client.upload(seed_files["test"])
        fit = client.fit(train, max_iter=5).wait(timeout=120)
        failed = client.fit(bad, max_iter=5)
        with pytest.raises(JobFailed):
            failed.wait(timeout=120)
        predict = client.predict(fit, test).wait(timeout=120)
        saved = client.download(predict, tmp_path / "predictions.parquet", progress=False)
        with pytest.raises(NotFound):
            client.job("job_0000000000000000000000")
    assert (fit.state, failed.state, predict.state) == ("SUCCEEDED", "FAILED", "SUCCEEDED")
    # The scheduler counts an end once its record is written, which is when
    # the client sees it: the last job's count may follow a moment later.
    deadline = time.monotonic() + 10
    while True:
        s1, g1 = scrape(scheduler), scrape(gateway)
        ended_now = sum(
            value for (name, _), value in s1.items() if name == "fityard_jobs_ended_total"
        ) - sum(value for (name, _), value in s0.items() if name == "fityard_jobs_ended_total")
        if ended_now >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    # jobs, counted once each by the scheduler
    assert moved(s0, s1, "fityard_jobs_submitted_total", kind="fit") == 2
    assert moved(s0, s1, "fityard_jobs_submitted_total", kind="predict") == 1
    ended = "fityard_jobs_ended_total"
    assert moved(s0, s1, ended, kind="fit", state="SUCCEEDED", reason="none") == 1
    assert moved(s0, s1, ended, kind="fit", state="FAILED", reason="invalid_data") == 1
    assert moved(s0, s1, ended, kind="predict", state="SUCCEEDED", reason="none") == 1
    assert moved(s0, s1, "fityard_job_queue_wait_seconds_count", kind="fit") == 2
    assert moved(s0, s1, "fityard_job_run_seconds_count", kind="fit", state="FAILED") == 1
    run = moved(s0, s1, "fityard_job_run_seconds_sum", kind="predict", state="SUCCEEDED")
    assert 0 < run < 60

    # bytes, exactly the files' sizes
    uploaded = sum(seed_files[name].stat().st_size for name in ("train", "one_class_train", "test"))
    assert moved(g0, g1, "fityard_transfer_bytes_total", direction="upload") == uploaded
    assert moved(g0, g1, "fityard_transfer_bytes_total", direction="download") == (
        saved.stat().st_size
    )
    assert value(g1, "fityard_transfers_active", direction="upload") == 0

    # RPCs by method and code, on the gateway and behind it on the scheduler
    assert moved(g0, g1, "grpc_server_handled_total", **rpc("SubmitFit")) == 2
    assert moved(g0, g1, "grpc_server_handled_total", **rpc("SubmitPredict")) == 1
    svc = "fityard.v1.DatasetService"
    assert moved(g0, g1, "grpc_server_handled_total", **rpc("Upload", service=svc)) == 3
    assert moved(g0, g1, "grpc_server_handled_total", **rpc("DownloadJobOutput")) == 1
    assert moved(g0, g1, "grpc_server_handled_total", **rpc("GetJob", "NOT_FOUND")) == 1
    latency = {k: v for k, v in rpc("SubmitFit").items() if k != "grpc_code"}
    assert moved(g0, g1, "grpc_server_handling_seconds_count", **latency) == 2
    submit_job = rpc("SubmitJob", service="services.internal.v1.SchedulerService")
    assert moved(s0, s1, "grpc_server_handled_total", **submit_job) == 3


def test_the_queue_and_cancels_as_they_happen(stack, seed_files):
    scheduler = stack.metrics_url("scheduler")
    s0 = scrape(scheduler)
    with Client(stack.address) as client:
        train = client.upload(seed_files["train"])
        running = wait_for_state(long_fit(client, train.id), "RUNNING")
        queued = [long_fit(client, train.id) for _ in range(2)]
        # One trainer: the two wait in the stream, the running one is held.
        queue = eventually(
            lambda: [
                value(now := scrape(scheduler), "fityard_queue_depth", lane="default"),
                value(now, "fityard_queue_held", lane="default"),
            ],
            [2, 1],
        )
        assert queue == [2, 1]
        # the one trainer: busy, holding every core (a lone job gets them all)
        trainer = scrape(stack.metrics_url("trainer-1"))
        assert value(trainer, "fityard_trainer_busy", trainer="trainer-1") == 1
        cores = value(trainer, "fityard_trainer_cores_leased", trainer="trainer-1")
        assert cores == len(os.sched_getaffinity(0))
        for job in [*queued, running]:
            client.cancel(job)
    s1 = scrape(scheduler)
    ended = "fityard_jobs_ended_total"
    assert moved(s0, s1, ended, kind="fit", state="CANCELLED", reason="user") == 3
    # only the running one had started: one wait, one run
    assert moved(s0, s1, "fityard_job_queue_wait_seconds_count", kind="fit") == 1
    assert moved(s0, s1, "fityard_job_run_seconds_count", kind="fit", state="CANCELLED") == 1
    # the queue empties and the trainer stops its fit and frees its cores
    after = eventually(
        lambda: {
            "waiting": value(scrape(scheduler), "fityard_queue_depth", lane="default"),
            "busy": value(
                scrape(stack.metrics_url("trainer-1")), "fityard_trainer_busy", trainer="trainer-1"
            ),
            "cores": value(
                scrape(stack.metrics_url("trainer-1")),
                "fityard_trainer_cores_leased",
                trainer="trainer-1",
            ),
        },
        {"waiting": 0, "busy": 0, "cores": 0},
    )
    assert after == {"waiting": 0, "busy": 0, "cores": 0}


def eventually(read, expected, timeout: float = 10.0):
    """read() until it returns `expected` or `timeout` passes; the last read."""
    deadline = time.monotonic() + timeout
    while (got := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def _queried_metrics(dashboard: dict) -> set[str]:
    """The metric names in the dashboard's PromQL expressions."""
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    assert exprs, "the dashboard queries nothing"
    functions = {"sum", "rate", "increase", "histogram_quantile", "by", "le", "max", "min", "avg"}
    names = set()
    for expr in exprs:
        bare = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
        bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)  # grouping labels
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
            if word.startswith(("fityard_", "grpc_")) and word not in functions:
                names.add(word)
    return names


# The series names of each metric type (a labelled metric with no series yet
# is served as its HELP and TYPE lines only).
SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def served_series(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SERIES.get(family.type, ("",))
    }


def test_every_metric_the_dashboard_queries_is_served(stack):
    dashboard = json.loads(DASHBOARD.read_text())
    served = set().union(*(served_series(stack.metrics_url(n)) for n in stack.metrics_ports))
    missing = sorted(name for name in _queried_metrics(dashboard) if name not in served)
    assert not missing, f"the dashboard queries metrics no service serves: {missing}"
