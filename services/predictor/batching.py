"""Concurrent requests for one model answered by one predict_proba call.

predict_proba on one row costs about as much as on fifty (scikit-learn's
checks and the tree walk's setup dominate), so a predictor answering many
single-row requests one by one would spend its time on overhead. Instead,
the requests for a model that arrive while its previous batch is being
predicted wait together and go as the next batch: no waiting is added when
the predictor is idle (a lone request goes at once), and batches grow with
the load. Under load (the last batch held more than one request) the next
batch also waits LINGER_SECONDS for more to arrive: requests reach the
batcher one by one through the event loop, and without the wait batches
stay at two or three requests, each costing a whole predict_proba call. Batches run one at a time on the predictor's prediction thread
(its cores are scaled with processes, not threads).

A batch whose data one request spoiled (a text where a number belongs)
is predicted again request by request, so only that request is refused.

Rows sent as JSON values for a model whose features are all numeric take a
short way: one float64 array (None is NaN, booleans 1/0, texts of numbers
converted: what ml's checks accept) straight into predict_proba, about five
times cheaper than building and checking a DataFrame. Rows that do not
convert go the long way, ml.predict_frame's checks, whose DataError names
the columns, as a batch predict's would.

Either way the probabilities come from the model's compiled form when it
has one (compiled.py: the same answers, about ten times cheaper per call),
else from scikit-learn's predict_proba. A small batch of JSON rows for a
compiled model (at most INLINE_TREE_ROWS rows x trees: a fraction of a
millisecond) is predicted on the event loop itself rather than handed to
the prediction thread: the hand-off and the two threads' turns at the GIL
cost more than the prediction (2 predictors, 32 callers: +8.5 % req/s,
p99 34 -> 29.5 ms, 3 alternating pairs).
"""

from __future__ import annotations

import asyncio
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .models import Model
from .rows import frame_of

# The most rows of queued requests one predict_proba call takes.
BATCH_ROWS = 1024
# Under load, how long a batch waits for more requests (see above). A
# fraction of a predict_proba call's own time: it raised throughput by a
# fifth and lowered p99 in bench/online_predict.py.
LINGER_SECONDS = 0.002
# The most rows x trees a batch may hold to be predicted on the event loop
# (compiled models only): 120 rows of the seed's 68 trees, about 0.4 ms.
INLINE_TREE_ROWS = 8192


@dataclass
class _Request:
    # Struct rows (lists in the model's feature order) or a DataFrame (Arrow).
    rows: list[list] | pd.DataFrame
    answer: asyncio.Future


class Batcher:
    """One per model: its queued requests and whether a batch is running."""

    def __init__(self, model: Model, executor: Executor):
        self.model = model
        self.executor = executor
        self._queued: list[_Request] = []
        self._running = False
        self._drainer: asyncio.Task | None = None  # kept: a task only weakly referenced may vanish
        self.batches = 0  # predict_proba calls made (for tests and the bench)

    async def predict(self, rows: list[list] | pd.DataFrame) -> np.ndarray:
        """The class probabilities of `rows` (raises ml.DataError for rows
        the model cannot predict)."""
        request = _Request(rows, asyncio.get_running_loop().create_future())
        self._queued.append(request)
        if not self._running:
            self._running = True
            self._drainer = asyncio.create_task(self._drain())
        return await request.answer

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        loaded = False
        try:
            while self._queued:
                if loaded:
                    await asyncio.sleep(LINGER_SECONDS)
                batch, size = [], 0
                while self._queued and (not batch or size + _rows(self._queued[0]) <= BATCH_ROWS):
                    size += _rows(self._queued[0])
                    batch.append(self._queued.pop(0))
                loaded = len(batch) > 1
                batch = [r for r in batch if not r.answer.done()]  # callers gone
                if not batch:
                    continue
                self.batches += 1
                try:
                    if self._inline(batch, size):
                        results = self._predict(batch)
                    else:
                        results = await loop.run_in_executor(self.executor, self._predict, batch)
                except Exception as exc:  # noqa: BLE001 - an unexpected error fails its batch
                    results = [exc] * len(batch)
                for request, result in zip(batch, results, strict=True):
                    if request.answer.done():
                        continue
                    if isinstance(result, BaseException):
                        request.answer.set_exception(result)
                    else:
                        request.answer.set_result(result)
        finally:
            self._running = False

    def _inline(self, batch: list[_Request], rows: int) -> bool:
        """Whether `batch` (`rows` rows) is predicted on the event loop."""
        compiled = self.model.compiled
        return (
            compiled is not None
            and self.model.numeric
            and rows * compiled.trees <= INLINE_TREE_ROWS
            and all(isinstance(r.rows, list) for r in batch)
        )

    def _together(self, rows: list[list]) -> np.ndarray:
        """The probabilities of Struct rows: the short way if they allow it."""
        if self.model.numeric:
            try:
                values = np.array(rows, dtype=np.float64)
            except (TypeError, ValueError):
                pass  # the long way says which column holds what
            else:
                if self.model.compiled is not None:
                    return self.model.compiled.predict_proba(values)
                with warnings.catch_warnings():
                    # an array has no column names: its columns are in the
                    # model's feature order (rows.struct_rows made them so)
                    warnings.filterwarnings("ignore", "X does not have valid feature names")
                    return self.model.estimator.predict_proba(values)
        return self._frame_proba(frame_of(rows, self.model))

    def _frame_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The probabilities of a DataFrame's rows, checked as ml.predict_frame
        checks them (a DataError names the columns)."""
        import ml
        from ml.checks import prediction_data

        compiled = self.model.compiled
        if compiled is None:
            return ml.predict_frame(self.model.estimator, frame)[1]
        X = prediction_data(frame, self.model.estimator, online=True)
        return compiled.predict_proba(X.to_numpy(dtype=np.float64))

    def _predict(self, batch: list[_Request]) -> list:
        """Each request's probabilities or DataError (in the prediction
        thread, or on the event loop for a batch _inline takes)."""
        import ml

        rows = [r for r in batch if isinstance(r.rows, list)]
        frames = [r for r in batch if not isinstance(r.rows, list)]
        results: dict[int, object] = {}
        if len(rows) > 1 or (rows and self.model.numeric):
            try:
                together = self._together([row for r in rows for row in r.rows])
            except ml.DataError:
                frames.extend(rows)  # one spoiled the batch: each on its own
            else:
                start = 0
                for r in rows:
                    results[id(r)] = together[start : start + len(r.rows)]
                    start += len(r.rows)
        else:
            frames.extend(rows)
        for r in frames:
            frame = frame_of(r.rows, self.model) if isinstance(r.rows, list) else r.rows
            try:
                results[id(r)] = self._frame_proba(frame)
            except ml.DataError as exc:
                results[id(r)] = exc
        return [results[id(r)] for r in batch]


def _rows(request: _Request) -> int:
    return len(request.rows)
