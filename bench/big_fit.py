"""The big fit: 2,000,000 rows × 50 features (about 790 MiB of Parquet)
through fityard, against the same fit bare (`python -m bench --only big`).

- time: submit to the client knowing it succeeded, against `ml.fit` in a
  fresh process of its own with every core (the bare fit); the two
  alternate and each pair shares a `random_state`, a new one per pair, so
  the split and early stopping give both the same boosting rounds and the
  fit cache never answers.
- memory: the peak RSS of the trainer's worker that ran the job against
  the bare fit process's own peak. Both are whole processes that imported
  pandas and scikit-learn; the worker has fityard's imports on top.

The bare fits run in fresh processes so that their peak is theirs alone and
the benchmark's own memory (the big frame made here is gone by then) does
not count.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .measure import Figure, reset_peak_rss, rss_bytes
from .memory import worker_pids

ROWS = 2_000_000
FEATURES = 50
PAIRS = 3
MiB = 2**20
# The random_state of the first pair (a new one per pair).
FIRST_SEED = 2000


def make_big(path: Path, rows: int = ROWS) -> Path:
    """The big training file, made in a process of its own (its 2 GiB of
    make_classification arrays are not kept by this one)."""
    _fresh("make", str(path), str(rows))
    return path


def _bare(train_path: str, params: dict) -> tuple[float, float, int]:
    """(seconds of ml.fit, the estimator's own fit seconds, the peak RSS of
    the fresh process that ran it, in bytes)."""
    answer = _fresh("bare", train_path, json.dumps(params))
    return answer["seconds"], answer["fit_seconds"], answer["peak_bytes"]


def _fresh(*args: str) -> dict:
    """`python -m bench.big_fit ARGS` in a new process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.big_fit", *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def _main(argv: list[str]) -> dict:
    """The fresh process's side of `_fresh`."""
    if argv[0] == "make":
        import pandas as pd
        from sklearn.datasets import make_classification

        X, y = make_classification(n_samples=int(argv[2]), n_features=FEATURES, random_state=0)
        frame = pd.DataFrame(X, columns=[f"col_{i}" for i in range(FEATURES)])
        frame["y"] = y
        frame.to_parquet(argv[1], index=False)
        return {}
    # ml.model, not ml alone: scikit-learn is imported before the clock
    # starts, as a worker has it imported
    import ml.model

    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        started = time.perf_counter()
        summary = ml.fit(argv[1], Path(tmp) / "model.joblib", params=json.loads(argv[2]))
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "fit_seconds": summary.fit_seconds, "peak_bytes": peak}


def _through_fityard(peer, dataset_id: str, params: dict) -> tuple[float, float, int]:
    """(seconds from submit to succeeded, the estimator's own fit seconds,
    the peak RSS of the worker that ran it)."""
    workers = worker_pids(peer.stack)
    for pid in workers:
        reset_peak_rss(pid)
    before = {pid: rss_bytes(pid)[0] for pid in workers}
    started = time.perf_counter()
    job = peer.client.fit(dataset_id, **params).wait(timeout=1800)
    seconds = time.perf_counter() - started
    peaks = {pid: rss_bytes(pid)[1] for pid in workers if Path(f"/proc/{pid}").exists()}
    ran = max(peaks, key=lambda pid: peaks[pid] - before[pid])  # the one that grew
    return seconds, job.metrics.fit_seconds, peaks[ran]


def measure_big_fit(peer, train_path: Path, rows: int = ROWS, pairs: int = PAIRS) -> list[Figure]:
    """The big fit's time and the worker's peak memory against the bare fit,
    `pairs` alternations (median; every pair kept); `train_path` holds
    `rows` rows (make_big)."""
    dataset_id = peer.dataset(train_path)
    parquet = train_path.stat().st_size
    runs = []
    for seed in range(FIRST_SEED, FIRST_SEED + pairs):
        params = {"random_state": seed}
        bare_s, estimator_s, bare_peak = _bare(str(train_path), params)
        ours_s, ours_estimator_s, worker_peak = _through_fityard(peer, dataset_id, params)
        runs.append(
            {
                "random_state": seed,
                "bare_s": bare_s,
                "bare_estimator_s": estimator_s,
                "fityard_s": ours_s,
                "fityard_estimator_s": ours_estimator_s,
                "ratio": ours_s / bare_s,
                "bare_peak_mib": bare_peak / MiB,
                "worker_peak_mib": worker_peak / MiB,
            }
        )
    ratios = [r["ratio"] for r in runs]
    system = "fityard (defaults)"
    name = f"big fit ({rows:,} × {FEATURES}, {parquet / MiB:.0f} MiB Parquet)"
    time_figure = Figure(
        f"{name}: end to end",
        system,
        statistics.median(r["fityard_s"] for r in runs),
        "s",
        statistics.median(r["bare_s"] for r in runs),
        "ml.fit in a fresh process, alternating",
        "<= 1.03",
        met=statistics.median(ratios) <= 1.03,
        extra={"pairs": runs, "ratios": ratios, "spread": [min(ratios), max(ratios)]},
    )
    memory_ratios = [r["worker_peak_mib"] / r["bare_peak_mib"] for r in runs]
    memory_figure = Figure(
        f"{name}: worker peak memory",
        system,
        statistics.median(r["worker_peak_mib"] for r in runs),
        "MiB",
        statistics.median(r["bare_peak_mib"] for r in runs),
        "peak RSS of the bare fit's process",
        "<= 1.00",
        met=statistics.median(memory_ratios) <= 1.0,
        extra={"ratios": memory_ratios, "parquet_mib": parquet / MiB},
    )
    return [time_figure, memory_figure]


if __name__ == "__main__":
    print(json.dumps(_main(sys.argv[1:])))
