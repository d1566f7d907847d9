"""fit and predict: Parquet in, a HistGradientBoostingClassifier, Parquet out.

The three functions are deliberately plain: fit reads with pandas, fits and
saves (ml.artifact); predict loads, predicts and writes; predict_frame
predicts the rows of a request with a model already loaded. What is added
around them is checking (ml.reading, ml.checks, ml.split): a user who
uploads the wrong file must get a DataError saying what is wrong with
*their data* and how to fix it, not a scikit-learn traceback. Anything else
that goes wrong is a bug or an infrastructure problem and is left to
propagate.

What stays here is the estimator's plumbing: the held-out rows passed to
early stopping as our split (ml.split says why it is ours), progress read
from scikit-learn's verbose output (it has no callback), the score on the
held-out rows and the summaries the job's record is built from.

pandas, scikit-learn and joblib are imported at module level on purpose: the
trainer's worker process imports this module once and then runs many jobs.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss

from ml import artifact
from ml.checks import prediction_data, training_data
from ml.columns import TARGET
from ml.kinds import categorical
from ml.messages import DataError, count, name_list, shown
from ml.reading import read_parquet
from ml.split import Split, held_out_split, hold_out

# The default for fit(max_classes=...); the trainer passes its configured
# FITYARD_MAX_CLASSES. HistGradientBoostingClassifier grows one tree per class
# per iteration, so a label column of ids would run for hours and then fail
# for lack of memory: it is refused up front instead.
MAX_CLASSES = 1000

Progress = Callable[[float, str], None]

# Prefix of a class's probability column in the predictions file.
PROBABILITY_PREFIX = "proba_"


@dataclass(frozen=True)
class Validation:
    """The rows a fit held out and how the model does on them. They are
    train_test_split(X, y, test_size=fraction, stratify=y, random_state=seed)
    of the training file's rows in file order (X: every column but `y`), so
    the user can rebuild them and check the score."""

    rows: int  # rows held out
    fraction: float  # the validation_fraction used
    seed: int  # random_state of the split
    accuracy: float  # accuracy_score on the held-out rows
    log_loss: float  # log_loss of predict_proba on them (labels: the model's classes)


@dataclass(frozen=True)
class FitSummary:
    rows: int  # rows trained on (held-out rows excluded)
    features: list[str]  # in the model's order (feature_names_in_)
    classes: list  # the model's classes_, as Python scalars
    # Per feature: "category" if fitted as categorical, else its Arrow type
    # in the training file ("double", "int64", "string"…).
    feature_types: list[str]
    n_iter: int  # boosting rounds fitted (fewer than max_iter after early stopping)
    fit_seconds: float  # wall seconds of the estimator's fit alone
    model_bytes: int  # size of the saved model file
    model_sha256: str  # its SHA-256 (hex): what loading it from elsewhere checks (ml.artifact)
    validation: Validation | None  # None when no rows were held out


@dataclass(frozen=True)
class PredictSummary:
    rows: int


def fit(
    train_path: str | Path,
    model_path: str | Path,
    params: dict | None = None,
    progress: Progress | None = None,
    *,
    max_classes: int | None = MAX_CLASSES,
) -> FitSummary:
    """Fit a HistGradientBoostingClassifier on the Parquet file `train_path`
    (target column `y`, every other column a feature), saved to `model_path`.

    `params` are HistGradientBoostingClassifier keyword arguments (see
    ml.params.to_sklearn_kwargs). `progress(fraction, message)` is called at
    stage boundaries. `max_classes` is the most distinct values `y` may hold
    (None: no limit). Raises DataError if the data cannot be trained on.

    A fraction of the rows is held out (see Validation) when early stopping
    is on (as scikit-learn decides: early_stopping True, or "auto" above
    10,000 rows) or `params` has a `validation_fraction`; the model is not
    trained on them, early stopping (if on) uses exactly them, and the
    summary scores the model on them.
    """
    report = progress or _no_progress
    params = params or {}
    report(0.05, "reading training data")
    df = read_parquet(train_path, "training data")
    split = held_out_split(params, len(df))
    X, y = training_data(df, params, max_classes, split)
    del df  # with X replaced by the split's copies below, the file's frame is freed before the fit
    X, X_val, y, y_val = hold_out(X, y, split)
    held_out = "" if X_val is None else f" ({count(len(X_val), 'row')} held out)"
    report(0.15, f"fitting on {count(len(X), 'row')} × {count(X.shape[1], 'feature')}{held_out}")
    model, fit_seconds = _fit_estimator(X, y, X_val, y_val, params, split, report)
    validation = None
    if split is not None:
        report(0.90, f"scoring {count(len(X_val), 'held-out row')}")
        validation = _score(model, X_val, y_val, split)
    report(0.95, "saving the model")
    saved = artifact.save(model, model_path)
    return FitSummary(
        rows=len(X),
        features=list(X.columns),
        classes=model.classes_.tolist(),
        feature_types=_feature_types(model, train_path),
        n_iter=int(model.n_iter_),
        fit_seconds=fit_seconds,
        model_bytes=saved.size,
        model_sha256=saved.sha256,
        validation=validation,
    )


def predict(
    model_path: str | Path,
    data_path: str | Path,
    predictions_path: str | Path,
    progress: Progress | None = None,
    *,
    probabilities: bool = False,
    sha256: str | None = None,
    name: str = "",
) -> PredictSummary:
    """Predict `y` for every row of the Parquet file `data_path` with the
    model saved by `fit`; write Parquet with exactly one column `y`, or with
    `probabilities`, `y` then one float64 column per class (in the model's
    classes_ order) named probability_column(class), holding its
    probability; `y` is then the most probable class, so the two agree.

    A model file from elsewhere (a store) is given the `sha256` its fit
    recorded (FitSummary.model_sha256), and `name`, the model as the user
    knows it: it is loaded only if its bytes still hash to that, else
    ml.artifact.ModelAltered (ml.artifact.load). None: a file of your own,
    loaded as it is.

    Columns are matched by name, so their order does not matter and extra
    columns (including a `y`) are ignored. Raises DataError if a feature the
    model was trained on is missing or holds values of another kind than in
    training (text where it had numbers, say), or if two classes would give
    one probability column name (1 and "1").
    """
    report = progress or _no_progress
    report(0.05, "loading the model")
    if sha256 is None:
        model = artifact.read(model_path)
    else:
        model = artifact.load(model_path, sha256, name)
    names = _probability_columns(model.classes_) if probabilities else []  # before any work
    report(0.10, "reading prediction data")
    df = read_parquet(data_path, "prediction data")
    X = prediction_data(df, model)

    report(0.20, f"predicting {count(len(X), 'row')}")
    if probabilities:
        each = model.predict_proba(X)
        predictions = pd.DataFrame(each, columns=names)
        predictions.insert(0, TARGET, artifact.most_probable(model.classes_, each))
    else:
        predictions = pd.DataFrame({TARGET: model.predict(X)})

    report(0.90, "writing predictions")
    predictions.to_parquet(predictions_path, index=False)
    return PredictSummary(rows=len(predictions))


def predict_frame(
    model: HistGradientBoostingClassifier, df: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) for the rows of `df`, for a model already
    loaded (ml.artifact.load of fit's file): a row's label is its most probable
    class, its probabilities are one per class in model.classes_ order.

    For online predictions, on every request: the same checks as `predict`
    (a DataError, worded for rows sent in a request, whose `columns` name
    the missing or mistyped columns), with little added to predict_proba.
    Columns are matched by name; extra ones are ignored.
    """
    X = prediction_data(df, model, online=True)
    probabilities = model.predict_proba(X)
    return artifact.most_probable(model.classes_, probabilities), probabilities


def probability_column(label) -> str:
    """The name of a class's probability column in a predictions file:
    "proba_" and the label as text (proba_0, proba_cat)."""
    return f"{PROBABILITY_PREFIX}{label}"


def _probability_columns(classes: np.ndarray) -> list[str]:
    """probability_column of each class, or a DataError if two classes would
    share a name (1 and "1"): a file's columns need distinct names."""
    labels = classes.tolist()  # Python scalars: np.str_ and np.float64 print as the user wrote them
    names = [probability_column(label) for label in labels]
    if len(set(names)) == len(names):
        return names
    shared: dict[str, list] = {}
    for name, label in zip(names, labels, strict=True):
        shared.setdefault(name, []).append(label)
    clashes = {name: group for name, group in shared.items() if len(group) > 1}
    listed = name_list(
        clashes,
        describe=lambda name: "for " + " and ".join(shown(label) for label in clashes[name][:3]),
    )
    raise DataError(
        f"the model has classes that differ only in type (a number and a text), whose probability "
        f"columns would have one name: {listed}. Predict without probabilities, or fit again with the "
        "labels in 'y' all numbers or all texts."
    )


def _fit_estimator(
    X: pd.DataFrame,
    y: pd.Series,
    X_val: pd.DataFrame | None,
    y_val: pd.Series | None,
    params: dict,
    split: Split | None,
    report: Progress,
) -> tuple[HistGradientBoostingClassifier, float]:
    """The estimator fitted on X, y, and the wall seconds of its fit.

    With early stopping it stops on X_val, y_val (our split). Its
    early_stopping is then passed as True: with "auto", scikit-learn would
    decide again on the rows it is given, and a file of just over 10,000
    rows has fewer than that left after the split. validation_fraction is
    ours and not passed on. The saved model keeps the user's settings, as
    a plain fit would have them.
    """
    kwargs = {name: value for name, value in params.items() if name != "validation_fraction"}
    stop_on = {}
    if split is not None and split.early_stopping:
        kwargs["early_stopping"] = True
        stop_on = {"X_val": X_val, "y_val": y_val}
    started = time.perf_counter()
    with contextlib.redirect_stdout(_Rounds(report, 0.15, 0.90)):
        # verbose=2 prints one line per boosting round, read as progress; it
        # changes what is printed, never what is fitted (tests/test_ml.py)
        model = HistGradientBoostingClassifier(**{**kwargs, "verbose": 2}).fit(X, y, **stop_on)
    seconds = time.perf_counter() - started
    model.set_params(
        verbose=params.get("verbose", 0), early_stopping=params.get("early_stopping", "auto")
    )
    return model, seconds


def _score(
    model: HistGradientBoostingClassifier, X_val: pd.DataFrame, y_val: pd.Series, split: Split
) -> Validation:
    """How the model does on the held-out rows, computed as a user checking
    it would: model.predict, not the most probable class (they differ only
    for probabilities equal to the last bit, but then the user's check
    would fail)."""
    return Validation(
        rows=len(y_val),
        fraction=split.fraction,
        seed=split.seed,
        accuracy=float(accuracy_score(y_val, model.predict(X_val))),
        log_loss=float(log_loss(y_val, model.predict_proba(X_val), labels=model.classes_)),
    )


def _feature_types(model: HistGradientBoostingClassifier, train_path: str | Path) -> list[str]:
    """Per feature, what it was fitted as: "category" if as categorical,
    else its Arrow type in the training file (from the file's footer: what
    the user wrote, where pandas' type would often say only "object")."""
    schema = pq.read_schema(train_path)
    return [
        "category" if is_category else str(schema.field(name).type)
        for name, is_category in zip(model.feature_names_in_, categorical(model), strict=True)
    ]


class _Rounds(io.TextIOBase):
    """stdout while scikit-learn fits with verbose=2: its "[k/n] ..." line
    after each boosting round becomes a progress report ("boosting round k
    of n", from `start` to `end`), at most every ROUNDS_REPORT_SECONDS and
    for the last round; everything else it prints is dropped.
    HistGradientBoostingClassifier has no callback: this is how a user sees
    how far a fit of hours has come."""

    def __init__(self, report: Progress, start: float, end: float):
        self.report, self.start, self.end = report, start, end
        self._pending = ""
        self._said = 0.0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            match = _ROUND.match(line)
            if match:
                self._round(int(match[1]), int(match[2]))
        return len(text)

    def _round(self, done: int, rounds: int) -> None:
        now = time.monotonic()
        if done < rounds and now - self._said < ROUNDS_REPORT_SECONDS:
            return
        self._said = now
        fraction = round(self.start + (self.end - self.start) * done / max(rounds, 1), 4)
        self.report(fraction, f"boosting round {done:,} of {rounds:,}")


_ROUND = re.compile(r"^\[(\d+)/(\d+)\]")
ROUNDS_REPORT_SECONDS = 0.5


def _no_progress(fraction: float, message: str) -> None:
    pass
