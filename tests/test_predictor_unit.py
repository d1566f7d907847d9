"""The predictor's pure parts, without a stack: concurrent requests for a
model become few predict_proba calls and get exactly their own rows'
answers; a spoiled request fails alone; the model cache keeps the most
recently used models within its byte bound and loads a model file only as
its fit saved it."""

from __future__ import annotations

import asyncio
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import grpc
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ml.messages import DataError
from services.common.errors import ApiError
from services.common.labels import to_values
from services.predictor.batching import Batcher
from services.predictor.models import Model, ModelCache
from services.predictor.rows import answer as answer_of

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def estimator():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    return HistGradientBoostingClassifier(max_iter=5).fit(X, (X.a + X.b > 0).astype(int))


def _model(estimator, model_id: str = "job_1", size: int = 100) -> Model:
    return Model(
        tenant="t",
        model_id=model_id,
        estimator=estimator,
        sha256="",
        size=size,
        features=FEATURES,
        class_values=to_values(estimator.classes_.tolist()),
        proba_columns=["proba_0", "proba_1"],
        numeric=True,
    )


def _answers(model: Model, requests: list) -> tuple[list, int]:
    async def go():
        batcher = Batcher(model, ThreadPoolExecutor(1))
        results = await asyncio.gather(
            *(batcher.predict(rows) for rows in requests), return_exceptions=True
        )
        return results, batcher.batches

    return asyncio.run(go())


def test_concurrent_requests_share_predict_calls_and_get_their_own_rows(estimator):
    rng = np.random.default_rng(1)
    requests = [rng.normal(size=(1 + i % 3, 3)).tolist() for i in range(40)]
    answers, batches = _answers(_model(estimator), requests)
    assert batches <= 3  # the first alone, the rest together (at most BATCH_ROWS each)
    for rows, answer in zip(requests, answers, strict=True):
        expected = estimator.predict_proba(pd.DataFrame(rows, columns=FEATURES))
        assert np.allclose(answer, expected)


def test_a_spoiled_request_fails_alone_naming_its_column(estimator):
    good = [[0.1, 0.2, 0.3]]
    requests = [good, [[0.1, "abc", 0.3]], good, [[None, True, 2.0]]]
    answers, _ = _answers(_model(estimator), requests)
    assert isinstance(answers[1], DataError) and "b (" in str(answers[1])
    assert list(answers[1].columns) == ["b"]
    for i in (0, 2, 3):
        expected = estimator.predict_proba(
            pd.DataFrame(requests[i], columns=FEATURES).astype(float)
        )
        assert np.allclose(answers[i], expected)


def test_a_dataframe_request_is_answered_as_predict_proba_answers_it(estimator):
    frame = pd.DataFrame({"c": [1.0, -1.0], "b": [0.5, 0.0], "a": [2.0, -2.0], "extra": ["x", "y"]})
    answers, _ = _answers(_model(estimator), [frame])
    assert np.allclose(answers[0], estimator.predict_proba(frame[FEATURES]))


def test_the_cache_drops_the_least_recently_used_to_stay_within_its_bytes(estimator):
    cache = ModelCache(jobs=None, store=None, max_bytes=250, executor=None)
    for name in ("job_a", "job_b"):
        cache._keep(_model(estimator, name, size=100))
    cache._kept.move_to_end(("t", "job_a"))
    cache._keep(_model(estimator, "job_c", size=100))
    assert cache.kept() == ["job_a", "job_c"] and cache.bytes == 200 <= cache.max_bytes
    assert cache.evictions == 1
    cache._keep(_model(estimator, "job_huge", size=300))
    assert cache.kept() == ["job_a", "job_c"] and cache.bytes == 200
    cache._keep(_model(estimator, "job_d", size=240))
    assert cache.kept() == ["job_d"] and cache.bytes == 240


class _Store:
    """Just what ModelCache._read uses of a store: one object, in chunks."""

    def __init__(self, data: bytes):
        self.data = data

    def read_stream(self, key: str):
        yield from (self.data[i : i + 1000] for i in range(0, len(self.data), 1000))


def test_a_model_file_is_loaded_only_as_its_fit_saved_it(estimator):
    saved = io.BytesIO()
    joblib.dump(estimator, saved)
    data = saved.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    loaded, size = ModelCache(None, _Store(data), 1 << 20, None)._read("k", digest, "job_1")
    assert size == len(data) and loaded.classes_.tolist() == estimator.classes_.tolist()

    altered = ModelCache(None, _Store(data + b"x"), 1 << 20, None)
    with pytest.raises(ApiError) as refused:
        altered._read("k", digest, "job_1")
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.message.startswith(
        "the model of jobs/job_1 does not match the checksum recorded when it was trained"
    )
    assert "Train the model again" in refused.value.message  # the batch predict's message
    (violation,) = refused.value.details[0].violations
    assert (violation.type, violation.subject) == ("MODEL_ALTERED", "jobs/job_1")


def test_an_answers_labels_are_what_predict_gives(estimator):
    X = pd.DataFrame(np.random.default_rng(2).normal(size=(50, 3)), columns=FEATURES)
    response = answer_of(_model(estimator), estimator.predict_proba(X))
    labels = [value.number_value for value in response.labels]
    assert labels == estimator.predict(X).astype(float).tolist()


def test_struct_rows_read_numbers_and_other_values_in_feature_order(estimator):
    from fityard.v1 import predictions_pb2
    from services.predictor.rows import struct_rows

    request = predictions_pb2.PredictRequest(model_id="job_1")
    for row in (
        {"c": 3.0, "b": 2.0, "a": 1.0, "extra": "ignored"},
        {"a": 0.0, "b": -1.5, "c": 0.0},  # zeros that are numbers
        {"a": None, "b": True, "c": "1.5"},  # what ml's checks convert
        {"a": 0.0, "b": False, "c": 4.0},  # a false reads as 0.0 too
    ):
        request.rows.add().update(row)
    assert struct_rows(request, _model(estimator)) == [
        [1.0, 2.0, 3.0],
        [0.0, -1.5, 0.0],
        [None, True, "1.5"],
        [0.0, False, 4.0],
    ]


def test_struct_rows_name_every_missing_column_and_add_none(estimator):
    from fityard.v1 import predictions_pb2
    from services.predictor.rows import struct_rows

    request = predictions_pb2.PredictRequest(model_id="job_1")
    request.rows.add().update({"a": 1.0, "b": 2.0, "c": 3.0})
    request.rows.add().update({"b": 2.0})
    with pytest.raises(ApiError) as refused:
        struct_rows(request, _model(estimator))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith("rows[1] is missing 2 columns the model was trained on")
    assert sorted(request.rows[1].fields) == ["b"]  # looking did not add them
