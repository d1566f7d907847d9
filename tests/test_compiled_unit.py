"""Compiled models for online predictions (services/predictor/compiled.py),
without a stack: a compiled model answers exactly as scikit-learn does (2,
3 and 20 classes, missing values), through the predictor's batcher too; a
model Treelite cannot take (categorical features) or whose compiled form
answers otherwise is refused, served by scikit-learn, and says so; the
compiled form's bytes count toward the model cache's bound."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import ml
from fityard.v1 import jobs_pb2
from ml.artifact import load
from services.internal.v1 import records_pb2
from services.predictor.batching import Batcher
from services.predictor.compiled import (
    CANNOT_COMPILE,
    NOT_REPRODUCED,
    TOLERANCE,
    Compiled,
    Refusal,
    check,
    check_rows,
    compile_model,
)
from services.predictor.models import ModelCache
from tests.support.fake_kv import TENANT, FakeBucket
from tests.support.frames import categorical_training_file
from tests.test_predictor_unit import _Store

FEATURES = [f"f{i}" for i in range(6)]


def _data(rows: int, classes: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with a tenth of their values missing, and `classes` labels."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, len(FEATURES)))
    score = values[:, 0] + 0.5 * values[:, 1] - values[:, 2] * values[:, 3]
    labels = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    values[rng.random(values.shape) < 0.1] = np.nan
    return pd.DataFrame(values, columns=FEATURES), labels


def _estimator(classes: int, seed: int = 0, **params) -> HistGradientBoostingClassifier:
    X, y = _data(3000, classes, seed)
    return HistGradientBoostingClassifier(max_iter=30, random_state=0, **params).fit(X, y)


@pytest.mark.parametrize("classes", [2, 3, 20])
def test_a_compiled_model_answers_as_scikit_learn_with_missing_values(classes):
    estimator = _estimator(classes)
    compiled = compile_model(estimator)
    assert isinstance(compiled, Compiled), compiled
    X, _ = _data(2000, classes, seed=1)
    expected = estimator.predict_proba(X)
    got = compiled.predict_proba(X.to_numpy())
    assert got.shape == expected.shape == (2000, classes)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert (estimator.classes_[got.argmax(axis=1)] == estimator.predict(X)).all()


def test_the_check_rows_sit_on_the_trees_split_thresholds():
    estimator = _estimator(2)
    compiled = compile_model(estimator)
    rows = check_rows(compiled)
    assert rows.shape[1] == len(FEATURES) and np.isnan(rows).any(axis=0).all()
    # a threshold a tree splits at, and the next float above it, are both there
    thresholds = [t for t in np.unique(rows[:, 0]) if np.isfinite(t)]
    assert any(
        np.nextafter(a, np.inf) == b for a, b in zip(thresholds, thresholds[1:], strict=False)
    )


def test_a_compiled_form_that_answers_otherwise_is_refused_saying_how_far_off():
    first, other = _estimator(2, seed=0), _estimator(2, seed=5)
    compiled = compile_model(first)
    refusal = check(compiled, other, check_rows(compiled))
    assert refusal == Refusal(NOT_REPRODUCED, refusal.detail)
    assert "labels differed" in refusal.detail and f"at most {TOLERANCE:.0e}" in refusal.detail


def _categorical_model(tmp_path):
    """A model as ml.fit makes it from a file with a 'category' column."""
    frame = categorical_training_file(tmp_path / "train.parquet", rows=600)
    summary = ml.fit(tmp_path / "train.parquet", tmp_path / "model", params={"max_iter": 10})
    data = (tmp_path / "model").read_bytes()
    return load(data, summary.model_sha256, "jobs/job_c"), data, frame.drop(columns="y")


def test_a_model_with_categorical_features_is_refused_saying_so(tmp_path):
    estimator, _, _ = _categorical_model(tmp_path)
    refusal = compile_model(estimator)
    assert refusal.why == CANNOT_COMPILE and "categorical features" in refusal.detail


def _cache(data: bytes, sha256: str, max_bytes: int) -> ModelCache:
    fit = records_pb2.JobRecord(
        id="job_m",
        tenant=TENANT,
        kind=jobs_pb2.JOB_KIND_FIT,
        state=jobs_pb2.JOB_STATE_SUCCEEDED,
        model_sha256=sha256,
        attempts=1,
    )
    return ModelCache(FakeBucket([fit]), _Store(data), max_bytes, ThreadPoolExecutor(1))


def _saved(estimator) -> tuple[bytes, str]:
    out = io.BytesIO()
    joblib.dump(estimator, out)
    return out.getvalue(), hashlib.sha256(out.getvalue()).hexdigest()


def test_a_loaded_models_compiled_form_counts_toward_the_cache_bound():
    data, sha256 = _saved(_estimator(3))
    cache = _cache(data, sha256, 1 << 30)
    model = asyncio.run(cache.get(TENANT, "job_m"))
    assert model.compiled is not None and model.compiled.nbytes > 0
    assert model.size == len(data) + model.compiled.nbytes == cache.bytes
    assert cache.engines() == {"treelite": 1} and not cache.refusals
    # room for the file but not for its compiled form too: answered, not kept
    small = _cache(data, sha256, len(data) + model.compiled.nbytes - 1)
    assert asyncio.run(small.get(TENANT, "job_m")).compiled is not None
    assert small.kept() == [] and small.bytes == 0


def _predict(model, requests: list) -> list:
    async def go():
        batcher = Batcher(model, ThreadPoolExecutor(1))
        return await asyncio.gather(*(batcher.predict(r) for r in requests))

    return asyncio.run(go())


def test_the_batcher_answers_through_the_compiled_form_as_scikit_learn_would():
    estimator = _estimator(3)
    data, sha256 = _saved(estimator)
    model = asyncio.run(_cache(data, sha256, 1 << 30).get(TENANT, "job_m"))
    X, _ = _data(40, 3, seed=2)
    rows = [[None if np.isnan(v) else v for v in row] for row in X.to_numpy().tolist()]
    requests = [rows[i : i + 1 + i % 3] for i in range(0, 40, 4)] + [X.iloc[:7]]
    answers = _predict(model, requests)
    calls = []
    model.compiled.predict_proba = lambda values, real=model.compiled.predict_proba: (
        calls.append(len(values)) or real(values)
    )
    again = _predict(model, requests)
    assert calls  # the compiled form answered them
    for request, answer, second in zip(requests, answers, again, strict=True):
        frame = (
            request
            if isinstance(request, pd.DataFrame)
            else pd.DataFrame(request, columns=FEATURES)
        )
        expected = estimator.predict_proba(frame.astype(float))
        assert np.abs(answer - expected).max() <= TOLERANCE and (second == answer).all()


def test_a_refused_model_is_served_by_scikit_learn_counted_and_logged(tmp_path, caplog):
    estimator, data, rows = _categorical_model(tmp_path)
    cache = _cache(data, hashlib.sha256(data).hexdigest(), 1 << 30)
    with caplog.at_level(logging.WARNING, logger="services.predictor.models"):
        model = asyncio.run(cache.get(TENANT, "job_m"))
    assert model.compiled is None
    assert cache.refusals == {CANNOT_COMPILE: 1} and cache.engines() == {"scikit-learn": 1}
    assert "job_m" in caplog.text and "served by scikit-learn, not compiled" in caplog.text
    (answer,) = _predict(model, [rows.head(5)])
    assert np.array_equal(answer, estimator.predict_proba(rows.head(5)))


def test_a_compiled_form_that_fails_while_checked_is_refused_not_raised(monkeypatch):
    import services.predictor.compiled as compiled_module

    def broken(compiled, rows=0, seed=0):
        raise RuntimeError("a tree Treelite reads differently")

    monkeypatch.setattr(compiled_module, "check_rows", broken)
    refusal = compile_model(_estimator(2))
    assert refusal.why == CANNOT_COMPILE
    assert "could not import or run it: a tree Treelite reads differently" in refusal.detail


class _CountingExecutor(ThreadPoolExecutor):
    """The prediction thread, counting the batches handed to it."""

    def __init__(self):
        super().__init__(1)
        self.handed = 0

    def submit(self, *args, **kwargs):
        self.handed += 1
        return super().submit(*args, **kwargs)


def test_small_json_batches_of_a_compiled_model_are_predicted_on_the_event_loop():
    from services.predictor.batching import INLINE_TREE_ROWS

    estimator = _estimator(2)
    data, sha256 = _saved(estimator)
    model = asyncio.run(_cache(data, sha256, 1 << 30).get(TENANT, "job_m"))
    X, _ = _data(INLINE_TREE_ROWS // model.compiled.trees + 1, 2, seed=3)
    rows = [[None if np.isnan(v) else v for v in row] for row in X.to_numpy().tolist()]

    async def handed(requests) -> tuple[int, list]:
        executor = _CountingExecutor()
        batcher = Batcher(model, executor)
        answers = [await batcher.predict(r) for r in requests]  # one batch each
        return executor.handed, answers

    small, answers = asyncio.run(handed([rows[:1], rows[:5]]))
    assert small == 0  # no hand-off for a few JSON rows
    assert np.abs(answers[1] - estimator.predict_proba(X.head(5))).max() <= TOLERANCE
    assert asyncio.run(handed([rows]))[0] == 1  # more rows x trees than the bound
    assert asyncio.run(handed([X.head(2)]))[0] == 1  # Arrow rows: pandas' checks, on the thread
