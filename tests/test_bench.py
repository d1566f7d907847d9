"""The benchmark suite runs and reports every figure (quick sizes).

Speed goals are not asserted here (they live in `make bench`'s table); this
checks that the suite measures fityard and both peers, reports each figure
with its same-run baseline, and that the scale run lost no job.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import pytest

from tools.gen_protos import ROOT

pytestmark = pytest.mark.stack


@pytest.mark.timeout(900)  # the subprocess's own limit, not the suite-wide 300 s
def test_quick_bench_reports_every_figure_against_a_baseline(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failures"] == []
    figures = report["figures"]
    seen = {(f["benchmark"].split(":")[0], f["system"]) for f in figures}
    for system in ["fityard (defaults)", "RQ, 1 worker(s)", "Ray"]:
        for benchmark in [
            "dispatch latency p50",
            "dispatch latency p95",
            "fit overhead (seed fit end to end)",
            "concurrency",
            "toy fit behind a long fit (end to end)",
        ]:
            assert (benchmark, system) in seen, (benchmark, system)
    assert ("concurrency", "RQ, 2 worker(s)") in seen
    # Ray on every row fityard is held to against it (issue 13)
    assert ("scale", "Ray") in seen
    against = {f["benchmark"] for f in figures if f["baseline_name"] == "Ray, same run"}
    assert against == {
        "dispatch latency p50: fityard against Ray",
        "dispatch latency p95: fityard against Ray",
        f"concurrency: {4} fits at once (makespan): fityard against Ray",
        f"scale: {30} tiny fits at once: fityard against Ray",
    }
    # the cores: fityard's CPU per job, with 2 and with 8 trainers
    smallest = {
        (f["benchmark"].split(": ")[1], f["system"])
        for f in figures
        if f["benchmark"].startswith("smallest job")
    }
    assert smallest == {
        (what, system)
        for what in ("throughput", "CPU per job outside the fit")
        for system in ("fityard (2 trainers)", "fityard (8 trainers)")
    }
    # the control plane under load: every watcher saw its job end
    control = {f["benchmark"]: f for f in figures if f["benchmark"].startswith("control plane")}
    assert len(control) == 5
    watchers = control["control plane: watchers that saw their job end"]
    assert watchers["value"] == watchers["baseline"] == 200
    assert any(f["benchmark"].startswith("trainer memory per job") for f in figures)
    transfers = [
        f
        for f in figures
        if f["benchmark"].startswith("transfer") and "memory" not in f["benchmark"]
    ]
    assert {f["system"] for f in transfers} == {"fityard, local store", "fityard, S3 (moto) store"}
    for transfer in transfers:  # against the lower of the store's and a raw gRPC stream's rate
        lower = map(min, transfer["extra"]["store"], transfer["extra"]["raw_grpc"])
        assert transfer["baseline"] == pytest.approx(statistics.median(lower))
        assert len(transfer["extra"]["repeats"]) == 3
    assert any(f["benchmark"].startswith("gateway memory growth") for f in figures)
    for figure in figures:
        # A gateway whose memory does not grow at all reports 0: the ideal.
        floor = 0 if "memory growth" in figure["benchmark"] else 1e-12
        assert (
            figure["value"] >= floor and figure["baseline"] > 0 and math.isfinite(figure["ratio"])
        ), figure
    # tracing on and off, side by side; the tracing-on stack really exported spans
    tracing = {f["benchmark"]: f for f in figures if f["benchmark"].startswith("tracing on")}
    assert set(tracing) == {
        "tracing on: dispatch latency p50",
        "tracing on: dispatch latency p95",
        "tracing on: seed fit end to end",
    }
    for figure in tracing.values():
        assert figure["system"] == "fityard (tracing on)"
        assert len(figure["extra"]["on"]) == len(figure["extra"]["off"]) == 2
        assert figure["extra"]["spans_exported"] > 0
    # example_2 with the fit cache, next to the same fits without it
    (example_2,) = [f for f in figures if f["benchmark"].startswith("example_2")]
    assert len(example_2["extra"]["cached"]) == len(example_2["extra"]["trained"]) == 3
    (scale,) = [
        f
        for f in figures
        if f["benchmark"].startswith("scale")
        and f["system"] == "fityard (defaults)"
        and f["baseline_name"] != "Ray, same run"
    ]
    assert scale["extra"]["succeeded"] == scale["extra"]["submitted"]
    # online predictions: single-row Predict under load, against the
    # reference, a bare predict_proba loop and the transport's ceiling;
    # every call answered
    online = {f["benchmark"]: f for f in figures if f["benchmark"].startswith("online")}
    assert set(online) == {
        "online Predict: single-row requests/s",
        "online Predict: p99 latency of single-row requests",
        "online Predict: transport ceiling (echo servers, same generator)",
        "online StreamPredict: single-row requests/s on streams",
        "online Predict through the gateway (one hop more)",
        "online Predict on one predictor (the same load, the pool's others stopped)",
    }
    rate = online["online Predict: single-row requests/s"]
    assert rate["extra"]["errors"] == 0 and rate["extra"]["calls"] > 100
    alone = online["online Predict on one predictor (the same load, the pool's others stopped)"]
    assert alone["extra"]["errors"] == 0 and alone["extra"]["calls"] > 100
    assert rate["baseline_name"].startswith("bare predict_proba loop")
    assert rate["extra"]["reference_req_s"] == 1100
    assert rate["extra"]["grpc_echo_ceiling_req_s"] > 0
    assert "| benchmark" in result.stdout  # the table is printed
