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

from .measure import Figure
from .memory import worker_peak

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
    with worker_peak(peer.stack) as worker:
        started = time.perf_counter()
        job = peer.client.fit(dataset_id, **params).wait(timeout=1800)
        seconds = time.perf_counter() - started
    return seconds, job.metrics.fit_seconds, worker.peak


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
        ours_s, ours_estimator_s, worker_peak_bytes = _through_fityard(peer, dataset_id, params)
        runs.append(
            {
                "random_state": seed,
                "bare_s": bare_s,
                "bare_estimator_s": estimator_s,
                "fityard_s": ours_s,
                "fityard_estimator_s": ours_estimator_s,
                "bare_peak_mib": bare_peak / MiB,
                "worker_peak_mib": worker_peak_bytes / MiB,
            }
        )
    name = f"big fit ({rows:,} × {FEATURES}, {parquet / MiB:.0f} MiB Parquet)"
    return [
        _paired(
            f"{name}: end to end",
            runs,
            ("fityard_s", "bare_s", "s"),
            "ml.fit in a fresh process, alternating",
            1.03,
            pairs=runs,
        ),
        _paired(
            f"{name}: worker peak memory",
            runs,
            ("worker_peak_mib", "bare_peak_mib", "MiB"),
            "peak RSS of the bare fit's process",
            1.00,
            parquet_mib=parquet / MiB,
        ),
    ]


def _paired(
    benchmark: str,
    runs: list[dict],
    keys: tuple[str, str, str],
    baseline_name: str,
    bound: float,
    **extra,
) -> Figure:
    """fityard's figure against the bare fit's over `runs` (keys: fityard's,
    the bare fit's, the unit): medians, met when the median of the pairs'
    ratios is at most `bound`."""
    ours, bare, unit = keys
    ratios = [run[ours] / run[bare] for run in runs]
    return Figure(
        benchmark,
        "fityard (defaults)",
        statistics.median(run[ours] for run in runs),
        unit,
        statistics.median(run[bare] for run in runs),
        baseline_name,
        f"<= {bound:.2f}",
        met=statistics.median(ratios) <= bound,
        extra={"ratios": ratios, "spread": [min(ratios), max(ratios)], **extra},
    )


if __name__ == "__main__":
    print(json.dumps(_main(sys.argv[1:])))
