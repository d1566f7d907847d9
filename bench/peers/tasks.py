"""The job bodies the peers (RQ, Ray) run: the same ml.fit fityard's trainers
run, timed from inside, so every system does identical work.

Importable by RQ's work horses and Ray's workers (module-level functions).
"""

from __future__ import annotations

import os
import tempfile
import time


def fit_job(train_path: str, params: dict | None = None, model_path: str | None = None) -> dict:
    """Fit the seed model on a Parquet file (`params`: HistGradientBoosting
    keyword arguments); return wall-clock times (time.time()) of the body's
    start and end, so the caller can compute dispatch latency. With
    `model_path` the model is kept there, as fityard keeps each job's model
    in its store; else it is written to a temporary file and dropped."""
    start = time.time()
    import ml

    if model_path:
        ml.fit(train_path, model_path, params=params)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            ml.fit(train_path, os.path.join(tmp, "model.joblib"), params=params)
    return {"start": start, "end": time.time(), "pid": os.getpid()}
