"""The benchmark suite's code runs and reports every figure: `python -m
bench --quick`, a smoke test at tiny sizes without the peers (RQ, Ray).

Speed goals are not asserted here and the smoke's figures mean nothing
(they live in `make bench`'s table, which also runs the peers); this checks
that every measurement of fityard runs, reports its figure with its
same-run baseline, and that no job was lost. How figures are held against
Ray's is checked on given figures, in the unit tier."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import pytest

from tools.gen_protos import ROOT

pytestmark = pytest.mark.stack


# The subprocess's own limit. Alone it takes about 75 s; beside the rest of
# the suite on a slow day of this VM it took over 240 s (the old limit).
@pytest.mark.timeout(540)
def test_quick_bench_reports_every_figure_against_a_baseline(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failures"] == []
    figures = report["figures"]
    seen = {(f["benchmark"].split(":")[0], f["system"]) for f in figures}
    for benchmark in [
        "dispatch latency p50",
        "dispatch latency p95",
        "fit overhead (seed fit end to end)",
        "concurrency",
        "toy fit behind a long fit (end to end)",
        "scale",
    ]:
        assert (benchmark, "fityard (defaults)") in seen, benchmark
    # the smoke runs no peer: nothing of RQ's or Ray's, no row against them
    assert {f["system"] for f in figures if "RQ" in f["system"] or "Ray" in f["system"]} == set()
    assert not [f for f in figures if f["baseline_name"] == "Ray, same run"]
    # the cores: fityard's CPU per job, one trainer per core and many more
    smallest = {
        (f["benchmark"].split(": ")[1], f["system"])
        for f in figures
        if f["benchmark"].startswith("smallest job")
    }
    many = f"fityard ({report['sizes']['many_trainers']} trainers)"
    assert smallest == {
        (what, system)
        for what in ("throughput", "CPU per job outside the fit")
        for system in ("fityard (defaults)", many)
    } | {("submit -> succeeded p50", "fityard (defaults)")}
    # the control plane under load: every watcher saw its job end
    control = {f["benchmark"]: f for f in figures if f["benchmark"].startswith("control plane")}
    assert len(control) == 5
    watchers = control["control plane: watchers that saw their job end"]
    assert watchers["value"] == watchers["baseline"] == 200
    assert any(f["benchmark"].startswith("trainer memory per job") for f in figures)
    # the big fit (its smoke size): end to end against a bare fit in a fresh
    # process, and the worker's peak memory against that process's
    big = {
        f["benchmark"].split(": ")[1]: f for f in figures if f["benchmark"].startswith("big fit")
    }
    assert set(big) == {"end to end", "worker peak memory"}
    (pair,) = big["end to end"]["extra"]["pairs"]
    assert pair["bare_s"] > 0 and pair["fityard_s"] > 0
    assert pair["bare_peak_mib"] > 50 and pair["worker_peak_mib"] > 50  # whole processes
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
        "online: one-row predict_proba, compiled (Treelite) against scikit-learn",
    }
    rate = online["online Predict: single-row requests/s"]
    assert rate["extra"]["errors"] == 0 and rate["extra"]["calls"] > 100
    alone = online["online Predict on one predictor (the same load, the pool's others stopped)"]
    assert alone["extra"]["errors"] == 0 and alone["extra"]["calls"] > 100
    assert rate["baseline_name"].startswith("bare predict_proba loop")
    assert rate["extra"]["reference_req_s"] == 1100
    assert rate["extra"]["grpc_echo_ceiling_req_s"] > 0
    gateway = online["online Predict through the gateway (one hop more)"]
    assert gateway["extra"]["errors"] == 0 and gateway["extra"]["p99_ms"] > 0
    compiled = online["online: one-row predict_proba, compiled (Treelite) against scikit-learn"]
    assert compiled["value"] > 0 and compiled["baseline"] > 0
    assert "| benchmark" in result.stdout  # the table is printed


def _part(tmp_path, part: str) -> list[dict]:
    """The figures of `python -m bench --only PART --quick`, which must exit 0."""
    out = tmp_path / f"{part}.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", part, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())["figures"]


@pytest.mark.timeout(300)
def test_the_short_jobs_part_runs_alone(tmp_path):
    """README's `python -m bench --only short` (here at the smoke's sizes,
    without Ray): the smallest job one at a time and in a burst, and what
    fityard's processes spent on it."""
    figures = {f["benchmark"]: f for f in _part(tmp_path, "short")}
    assert set(figures) == {
        "smallest job, one at a time: submit -> succeeded p50",
        "smallest job (6 at once): throughput",
        "smallest job (6 at once): CPU per job outside the fit",
    }
    one = figures["smallest job, one at a time: submit -> succeeded p50"]
    assert one["system"] == "fityard (defaults)" and len(one["extra"]["repeats"]) == 3
    assert one["value"] > 0 and one["baseline"] > 0


@pytest.mark.timeout(300)
def test_the_big_fit_part_runs_alone(tmp_path):
    """README's `python -m bench --only big` (at the smoke's 20,000 rows):
    the fit end to end and the worker's peak memory, each against a bare
    fit in a fresh process."""
    figures = _part(tmp_path, "big")
    assert [f["benchmark"].split(": ")[1] for f in figures] == ["end to end", "worker peak memory"]
    assert figures[0]["benchmark"].startswith("big fit (20,000 × 50")
    assert figures[0]["extra"]["pairs"][0]["random_state"] == 2000
