"""fit and predict: Parquet in, a HistGradientBoostingClassifier, Parquet out.

The two functions are deliberately plain (read with pandas, fit, dump with
joblib; load, predict, write). What is added around them is checking: a user
who uploads the wrong file must get a DataError saying what is wrong with
*their data* and how to fix it, not a scikit-learn traceback. Anything else
that goes wrong is a bug or an infrastructure problem and is left to propagate.

The checks also hand scikit-learn its input in the form they checked: feature
columns that are not plain numpy numbers (text holding numbers, decimals,
pandas' nullable and Arrow-backed types) are converted to float64 here, and
nullable or decimal labels to plain numbers, so what was checked is exactly
what is fitted on and a column that passed cannot fail inside scikit-learn.

Rows held out from a fit (for early stopping, or for a score the user asked
for with validation_fraction) are split here, not inside scikit-learn, so
that the split can be reported (fraction and seed) and reproduced by the
user with one train_test_split call, and the score is computed on exactly
the rows early stopping saw and the model was not trained on.

pandas, scikit-learn and joblib are imported at module level on purpose: the
trainer's worker process imports this module once and then runs many jobs.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import infer_dtype, is_numeric_dtype
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import type_of_target

from ml import artifact
from ml.columns import TARGET, check_prediction_columns, check_training_columns, near_target
from ml.messages import DataError, bounded, count, name_list, quoted
from ml.params import validate_params

# The default for fit(max_classes=...); the trainer passes its configured
# FITYARD_MAX_CLASSES. HistGradientBoostingClassifier grows one tree per class
# per iteration, so a label column of ids would run for hours and then fail
# for lack of memory: it is refused up front instead.
MAX_CLASSES = 1000

Progress = Callable[[float, str], None]

# scikit-learn's early_stopping="auto" is on above this many rows, and then
# holds out its default validation_fraction (read from sklearn, not copied).
AUTO_EARLY_STOPPING_ROWS = 10_000
DEFAULT_VALIDATION_FRACTION = HistGradientBoostingClassifier().validation_fraction

# Seeds for a held-out split when random_state is not set: what numpy's
# RandomState takes (ml.params.RANGES["random_state"]), upper end excluded.
SEED_LIMIT = 2**32 - 1

# Prefix of a class's probability column in the predictions file.
PROBABILITY_PREFIX = "proba_"

# What pandas/pyarrow raise for a file that is not (valid) Parquet; a corrupt
# page can surface as OSError ("Couldn't deserialize thrift").
_UNREADABLE = (pa.ArrowException, ValueError, OSError)

# What converting a column to float64 raises when its values are not numbers.
_NOT_NUMBERS = (TypeError, ValueError, ArithmeticError, NotImplementedError, pa.ArrowException)

# pandas' infer_dtype names, in the user's words (what a column holds).
_KINDS = {
    "string": "text",
    "integer": "numbers",
    "integer-na": "numbers",
    "floating": "numbers",
    "mixed-integer-float": "numbers",
    "decimal": "numbers",
    "boolean": "numbers",  # True/False are 1/0 to scikit-learn
    "bytes": "bytes",
    "datetime64": "date-times",
    "datetime": "date-times",
    "date": "dates",
    "time": "times of day",
    "timedelta64": "durations",
    "timedelta": "durations",
    "period": "periods",
    "interval": "intervals",
    "complex": "complex numbers",
}


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
    (target column `y`, every other column a feature) and save it to
    `model_path` (ml.artifact.save; the summary has the file's digest).

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
    df = _read_parquet(train_path, "training data")
    split = _held_out_split(params, len(df))
    X, y = _training_data(df, params, max_classes, split)
    del df  # with X replaced by the split's copies below, the file's frame is freed before the fit

    X_val = y_val = None
    held_out = ""
    if split is not None:
        X, X_val, y, y_val = train_test_split(
            X, y, test_size=split.fraction, stratify=y, random_state=split.seed
        )
        held_out = f" ({count(len(X_val), 'row')} held out)"
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
    df = _read_parquet(data_path, "prediction data")
    X = _prediction_data(df, model)

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
    X = _prediction_data(df, model, online=True)
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
    shown = name_list(
        clashes,
        describe=lambda name: "for " + " and ".join(_shown(label) for label in clashes[name][:3]),
    )
    raise DataError(
        f"the model has classes that differ only in type (a number and a text), whose probability "
        f"columns would have one name: {shown}. Predict without probabilities, or fit again with the "
        "labels in 'y' all numbers or all texts."
    )


# -- the held-out split --------------------------------------------------------


class _Split(NamedTuple):
    """How a fit holds rows out: `fraction` of them, split with `seed`.
    `early_stopping`: scikit-learn stops on them (otherwise they are only
    scored). `asked`: the fraction is the user's validation_fraction, not
    early stopping's default, which changes what a message says to fix."""

    fraction: float
    seed: int
    early_stopping: bool
    asked: bool


def _held_out_split(params: dict, rows: int) -> _Split | None:
    """The split a fit of `rows` rows with `params` makes; None if it holds
    no rows out. The seed is random_state if set, else a fresh one (it is
    reported, so the split can still be rebuilt)."""
    setting = params.get("early_stopping", "auto")
    early_stopping = setting is True or (setting == "auto" and rows > AUTO_EARLY_STOPPING_ROWS)
    fraction = params.get("validation_fraction")
    if fraction is None and not early_stopping:
        return None
    if fraction is not None:
        problems = validate_params({"validation_fraction": fraction})
        if problems:  # admission refuses these; a direct caller gets what to fix
            raise ValueError("; ".join(problems))
    seed = params.get("random_state")
    return _Split(
        fraction=DEFAULT_VALIDATION_FRACTION if fraction is None else float(fraction),
        seed=secrets.randbelow(SEED_LIMIT) if seed is None else int(seed),
        early_stopping=early_stopping,
        asked=fraction is not None,
    )


def _fit_estimator(
    X: pd.DataFrame,
    y: pd.Series,
    X_val: pd.DataFrame | None,
    y_val: pd.Series | None,
    params: dict,
    split: _Split | None,
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
    model: HistGradientBoostingClassifier, X_val: pd.DataFrame, y_val: pd.Series, split: _Split
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
        for name, is_category in zip(model.feature_names_in_, _categorical(model), strict=True)
    ]


def _categorical(model: HistGradientBoostingClassifier) -> list[bool]:
    """Per feature (model order), whether the model fitted it as categorical."""
    if model.is_categorical_ is None:
        return [False] * model.n_features_in_
    return model.is_categorical_.tolist()


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


def _read_parquet(path: str | Path, what: str) -> pd.DataFrame:
    """pd.read_parquet, with an unreadable file reported as the user's DataError."""
    try:
        try:
            df = pd.read_parquet(path)
        except TypeError:
            # The file's pandas metadata names a dtype this pandas cannot
            # rebuild (pandas itself writes such files, e.g. for a list column
            # of ArrowDtype). The data is fine: read it without that metadata.
            df = pd.read_parquet(path, to_pandas_kwargs={"ignore_metadata": True})
    except FileNotFoundError:
        raise  # our file, not the user's data
    except _UNREADABLE as exc:
        # Parquet allows two columns of one name; pyarrow then fails with
        # "Multiple matches for FieldRef" and a dump of the whole schema.
        _check_distinct_names(_schema_names(path), what)
        raise _unreadable(what, path, exc) from exc
    _check_distinct_names(df.columns, what)  # should pandas ever read them after all
    return df


# -- checks: each raises DataError with the fix in the message ----------------


def _training_data(
    df: pd.DataFrame, params: dict, max_classes: int | None, split: _Split | None
) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels to fit on, or a DataError for data that
    HistGradientBoostingClassifier would reject with an obscure error (or, for
    some, a misleading one, or after hours of work).

    The label checks come first: they are cheap and a wrong `y` (ids, say)
    makes everything else moot.
    """
    check_training_columns(list(df.columns), len(df), hint=_target_hint(df))
    X, y = df.drop(columns=[TARGET]), _labels(df[TARGET])
    classes = _check_labels(y, max_classes)
    _check_split(y, split, n_classes=len(classes))
    return _training_features(X, max_bins=params.get("max_bins") or 255), y


def _labels(y: pd.Series) -> pd.Series:
    """`y` as plain numpy labels where pandas read something else, so that
    the classes (and the predictions) are what the user wrote: nullable or
    Arrow-backed integers and booleans as numpy ones (scikit-learn would
    otherwise make floats of them), decimals as integers (floats if they
    have fractions, which the continuous-target check then explains)."""
    if y.hasnans:
        return y  # reported by _check_labels; nothing to convert
    dtype = y.dtype
    if not isinstance(dtype, (np.dtype, pd.CategoricalDtype)) and is_numeric_dtype(dtype):
        y = pd.Series(y.to_numpy(dtype=dtype.numpy_dtype), index=y.index, name=y.name)
    if y.dtype == object and infer_dtype(y, skipna=False) == "decimal":
        values = y.to_numpy(dtype=np.float64)
        whole = (
            np.isfinite(values).all()
            and (values == np.round(values)).all()
            and np.abs(values).max() < 2**53
        )
        y = pd.Series(values.astype(np.int64) if whole else values, index=y.index, name=y.name)
    return y


def _check_labels(y: pd.Series, max_classes: int | None) -> list:
    """Refuse a `y` that does not hold usable class labels; return the classes."""
    missing = int(y.isna().sum())
    if missing:
        raise DataError(
            f"'y' is missing in {missing:,} of {count(len(y), 'row')}; every training row needs a label. "
            "Fill in 'y' or drop those rows and upload again."
        )
    kind = _kind(y)
    if kind in ("lists", "structs", "bytes"):
        raise DataError(
            f"'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds {kind}, "
            f"e.g. {name_list(y.head(3), limit=3)}. Put one label (a number or a text) in each row of 'y' "
            "and upload again."
        )
    if y.dtype.kind == "f" and np.isinf(y.to_numpy()).any():
        infinite = int(np.isinf(y.to_numpy()).sum())
        raise DataError(
            f"'y' is infinite (inf or -inf) in {infinite:,} of {count(len(y), 'row')}; every training row needs "
            "a class label. Fix 'y' in those rows or drop them and upload again."
        )
    classes = y.drop_duplicates().tolist()  # Python scalars, for the messages
    if len(classes) < 2:
        raise DataError(
            f"training data needs at least two classes in 'y'; found only 1 (every row has y = {_shown(classes[0])}). "
            "Add rows of another class and upload again."
        )
    # Before type_of_target, which sorts the labels (seconds for millions of
    # text labels). Floats with fractions are left to it: "continuous" is the
    # better explanation for them.
    if max_classes is not None and len(classes) > max_classes and not _fractional(y):
        raise DataError(
            f"column 'y' has {len(classes):,} distinct values (e.g. {name_list(classes[:3], limit=3)}); "
            f"a classifier supports at most {max_classes:,} classes (FITYARD_MAX_CLASSES): "
            "is y a continuous quantity or an id? Put the class to predict in 'y' "
            f"(at most {max_classes:,} different values, e.g. by grouping rare ones) and upload again."
        )
    kind = _target_kind(y)
    if kind not in ("binary", "multiclass"):
        raise DataError(
            f"'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds {kind} values, "
            f"e.g. {name_list(classes[:3], limit=3)}. "
            "HistGradientBoostingClassifier predicts classes: put a class label in 'y' and upload again."
        )
    return classes


def _fractional(y: pd.Series) -> bool:
    """Whether `y` holds floats with fractions (which sklearn calls continuous)."""
    if y.dtype.kind != "f":
        return False
    values = y.to_numpy()
    return bool((values != np.round(values)).any())


def _check_split(y: pd.Series, split: _Split | None, n_classes: int) -> None:
    """A held-out split is stratified by class, which fails for a class
    with a single row or more classes than either part has rows, with
    scikit-learn's message (in terms of encoded classes the user never saw,
    when it failed inside early stopping)."""
    if split is None:
        return
    n = len(y)
    held_out = _held_out_rows(split.fraction, n)
    what = (
        f"validation_fraction {split.fraction:g} holds out"
        if split.asked
        else "early stopping holds out"
    )
    what = f"{what} {held_out:,} of {count(n, 'row')} for validation, stratified by class"
    counts = y.value_counts()
    single = counts.index[counts == 1].tolist()
    if single:
        one = len(single) == 1
        raise DataError(
            f"{what}, so every class in 'y' needs at least 2 rows; {count(len(single), 'class', 'classes')} "
            f"{'has' if one else 'have'} only one: {name_list(single)}. "
            f"Add rows of {'that class' if one else 'those classes'} or drop {'it' if one else 'them'}, "
            f"or {_no_split(split)}, and upload again."
        )
    if min(held_out, n - held_out) < n_classes:
        too_few = (
            "which is too few rows"
            if held_out < n_classes
            else f"which leaves {count(n - held_out, 'row')} to train on, too few"
        )
        raise DataError(
            f"{what}, {too_few} for the {n_classes:,} classes in 'y'. "
            f"Add rows, use fewer classes, {_set_fraction(n, n_classes)}or {_no_split(split)}, "
            "and upload again."
        )


def _held_out_rows(fraction: float, rows: int) -> int:
    """How many rows train_test_split(test_size=fraction) holds out."""
    return math.ceil(fraction * rows)


def _no_split(split: _Split) -> str:
    """How to fit without holding rows out (none is needed for a fit)."""
    if not split.asked:
        return 'fit with the parameter early_stopping set to "false"'
    if not split.early_stopping:
        return "fit without the parameter validation_fraction"
    return 'fit without the parameter validation_fraction and with early_stopping set to "false"'


def _set_fraction(rows: int, n_classes: int) -> str:
    """ "set validation_fraction between 0.2 and 0.8, ": the fractions (of 3
    decimals) for which a stratified split of `rows` rows leaves both parts
    at least as many rows as there are classes; "" if there is none.

    Every fraction in between works too (the rows held out grow with it).
    With at least 2 rows per class (checked first), 0.5 always works."""
    low = math.ceil(n_classes / rows * 1000) / 1000
    high = math.floor((rows - n_classes) / rows * 1000) / 1000
    while low < 1 and _held_out_rows(low, rows) < n_classes:  # float rounding: a step at most
        low = round(low + 0.001, 3)
    while high > 0 and rows - _held_out_rows(high, rows) < n_classes:
        high = round(high - 0.001, 3)
    if not 0 < low <= high < 1:
        return ""
    if low == high:
        return f"set validation_fraction to {low:g}, "
    return f"set validation_fraction between {low:g} and {high:g}, "


def _training_features(X: pd.DataFrame, max_bins: int) -> pd.DataFrame:
    """The feature columns as scikit-learn is to get them: 'category'
    columns as they are (a Parquet dictionary column reads as one; sklearn
    encodes them), every other column as numbers."""
    numeric, unusable = _as_numeric_features(X.select_dtypes(exclude="category"))
    if unusable:
        it = "it" if len(unusable) == 1 else "them"
        raise DataError(
            f"training data has {count(len(unusable), 'feature column')} HistGradientBoostingClassifier cannot use: "
            f"{name_list(unusable, describe=lambda name: _kind_name(X[name]))}. Encode {it} as numbers "
            "(or store categories as a pandas 'category' column, at most 255 distinct values), "
            f"or drop {it}, and upload again."
        )
    empty = [name for name, column in X.items() if column.isna().all()]
    if empty:
        it = "it" if len(empty) == 1 else "them"
        raise DataError(
            f"training data has {count(len(empty), 'feature column')} with no values (missing in every row): "
            f"{name_list(empty)}. Drop {it} or fill {it} in and upload again."
        )
    for name, column in X.items():
        distinct = column.nunique() if isinstance(column.dtype, pd.CategoricalDtype) else 0
        if distinct > max_bins:
            raise DataError(
                f"categorical feature column {quoted(name)} has {distinct:,} distinct values; "
                f"HistGradientBoostingClassifier takes at most {max_bins} (max_bins) per categorical column. "
                "Merge rare categories, encode the column as numbers, or drop it, and upload again."
            )
    return _replace_columns(X, numeric)


def _prediction_data(
    df: pd.DataFrame, model: HistGradientBoostingClassifier, *, online: bool = False
) -> pd.DataFrame:
    """The model's feature columns from `df`, in the model's order, as
    scikit-learn is to get them; a DataError if one is missing or holds
    another kind of values than in training.

    Numeric features must convert to numbers, as in training. Categorical
    features (the model's `is_categorical_`) go through sklearn's category
    encoder, which also takes plain text (files written by other tools often
    lose the dictionary encoding), but must hold the same kind of values as
    in training: numbers given for text categories crash the encoder, and
    text for number categories (or bytes for text) would all be unknown
    categories, silently predicted as if missing.

    The errors name the columns at fault in their `columns` too. `online`:
    the rows came in a request (predict_frame), not in a file, and the fix
    says so.

    predict_frame calls this for every online request of a few rows, where
    pandas' per-column work costs as much as the prediction: hence plain
    lists for the names, no selection when the columns are the features
    already, and a column is looked at only if its type needs it.
    """
    columns = df.columns.tolist()
    if len(set(columns)) < len(columns):
        _check_distinct_names(columns, "prediction data", online=online)
    features = model.feature_names_in_.tolist()
    check_prediction_columns(
        columns,
        features,
        len(df),
        hint=lambda missing: _index_hint(df, missing),
        online=online,
    )
    X = df if columns == features else df.take(_positions(columns, features), axis=1)
    categorical = {
        name for name, is_category in zip(features, _categorical(model), strict=True) if is_category
    }
    numeric, unusable = _as_numeric_features(X, skip=categorical)
    trained = dict.fromkeys(features, "numbers")
    mismatched = {name: _kind_name(X[name]) for name in unusable}
    if categorical:
        trained.update(_category_kinds(model))
        for name in categorical:
            column = X[name]
            if not column.isna().all() and _kind(column) != trained[name]:
                mismatched[name] = _kind_name(column)
    if mismatched:
        names = [name for name in features if name in mismatched]  # in the model's order
        them = "it" if len(names) == 1 else "them"
        shown = name_list(
            names, describe=lambda name: f"{mismatched[name]} here, {trained[name]} in training"
        )
        fix = f"Send {them}" if online else f"Store {them}"
        again = "" if online else " and upload again"
        raise DataError(
            f"prediction data has {count(len(names), 'feature column')} holding other values than the model "
            f"was trained on: {shown}. "
            f"{fix} as in the training data (numbers for numbers, text for categories){again}.",
            columns=names,
        )
    return _replace_columns(X, numeric)


def _check_distinct_names(names, what: str, *, online: bool = False) -> None:
    """DataError naming the names that occur more than once (in its
    `columns` too). `online`: the columns came in a request, not a file."""
    repeated = {name: n for name, n in Counter(names).items() if n > 1}
    if repeated:
        shown = name_list(repeated, describe=lambda name: f"{repeated[name]} times")
        again = "send the rows again" if online else "upload again"
        raise DataError(
            f"{what} has more than one column named {shown}. "
            f"Each column needs its own name: rename or drop the duplicates and {again}.",
            columns=list(repeated),
        )


def _schema_names(path: str | Path) -> list[str]:
    """The column names in a Parquet file's footer; [] if there is none."""
    try:
        return pq.read_schema(path).names
    except _UNREADABLE:
        return []


def _target_hint(df: pd.DataFrame) -> str:
    """Why 'y' may seem to be there to the user, for the "no column 'y'" message."""
    return near_target(df.columns) or _index_hint(df, [TARGET])


def _index_hint(df: pd.DataFrame, missing: list) -> str:
    """A hint when a missing column is the file's pandas index (written with
    DataFrame.to_parquet(index=True) after set_index): pandas reads it back
    as the index, not as a column."""
    indexed = [name for name in missing if name in set(df.index.names)]
    if not indexed:
        return ""
    return (
        f" ({name_list(indexed)} {'is' if len(indexed) == 1 else 'are'} the file's index: "
        "write the file with index=False after reset_index())"
    )


def _positions(columns: list, names: list) -> list[int]:
    """Where each of `names` is in `columns` (all there, each once): a dict,
    where pandas' own lookup of text names costs more than a short prediction."""
    where = {name: i for i, name in enumerate(columns)}
    return [where[name] for name in names]


def _as_numeric_features(
    X: pd.DataFrame, skip: Collection = ()
) -> tuple[dict[str, pd.Series], list]:
    """Columns of `X` (but those in `skip`) converted to float64 where they
    are not plain numpy numbers already, and the names of those that cannot
    be converted.

    This is the conversion sklearn applies to every non-categorical feature,
    done here so that it is checked: numbers and booleans, but also text that
    holds numbers, Parquet decimals (read as objects) and pandas' nullable and
    Arrow-backed types, whose missing values sklearn cannot convert itself.
    Dates and durations are refused even though numpy can convert them,
    because sklearn refuses them.
    """
    converted, unusable = {}, []
    # By the types first: a column taken out of X costs time (predict_frame).
    for name, dtype in zip(X.columns.tolist(), X.dtypes.tolist(), strict=True):
        if name in skip or (isinstance(dtype, np.dtype) and dtype.kind in "biuf"):
            continue
        if dtype.kind in "mM":
            unusable.append(name)
            continue
        column = X[name]
        try:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        except _NOT_NUMBERS:
            unusable.append(name)
            continue
        converted[name] = pd.Series(values, index=column.index, name=name)
    return converted, unusable


def _replace_columns(X: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    """`X` with the given columns swapped in, in place of their namesakes (same order)."""
    if not columns:
        return X
    return pd.DataFrame(
        {name: columns.get(name, column) for name, column in X.items()}, index=X.index
    )


def _category_kinds(model: HistGradientBoostingClassifier) -> dict[str, str]:
    """What each categorical feature held in training ("text", "numbers"…),
    from the categories sklearn's encoder learned. That encoder sits behind
    a private attribute, hence the guard: {} (no check) if it is not found."""
    try:
        encoder = model._preprocessor.named_transformers_["encoder"]  # noqa: SLF001 - guarded
        names, categories = encoder.feature_names_in_, encoder.categories_
    except (AttributeError, KeyError):
        return {}
    return {
        name: _kind(pd.Series(values).dropna())
        for name, values in zip(names, categories, strict=True)
    }


def _kind(column: pd.Series) -> str:
    """What `column` holds, in words: "text", "numbers", "dates"…; a
    'category' column, what its categories are."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = pd.Series(column.cat.categories)
    inferred = infer_dtype(column, skipna=True)
    if inferred in _KINDS:
        return _KINDS[inferred]
    first = column.dropna().iloc[0] if column.notna().any() else None
    if isinstance(first, dict):
        return "structs"
    if isinstance(first, (list, tuple, np.ndarray)):
        return "lists"
    return "mixed values" if inferred.startswith("mixed") else inferred


def _kind_name(column: pd.Series) -> str:
    """How a column is named in messages: its pandas type ("str",
    "datetime64[us]"), which the user can look up, or for 'object' and
    'category' columns (whose type says little) what the values are
    ("lists", "category of text")."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return f"category of {_kind(column)}"
    return _kind(column) if column.dtype == object else str(column.dtype)


def _shown(value) -> str:
    """A label value in a message: its repr, cut like a name."""
    text = repr(value)
    return text if len(text) <= 64 else text[:63] + "…"


def _target_kind(y: pd.Series) -> str:
    """sklearn's name for what `y` holds: "binary", "multiclass", "continuous"…"""
    try:
        return type_of_target(y)
    except ValueError:  # e.g. lists in the cells
        return "unsupported"


# -- message helpers ---------------------------------------------------------


def _unreadable(what: str, path: str | Path, exc: Exception) -> DataError:
    # pyarrow quotes the local (temporary) path, which means nothing to the
    # user; its reason may quote the whole schema, which the bound cuts.
    reason = bounded(str(exc).replace(f" '{path}'", "").rstrip("."), 1024)
    return DataError(
        f"could not read {what} as Parquet: {reason}. "
        "Upload a valid Parquet file (e.g. written with pandas DataFrame.to_parquet)."
    )


def _no_progress(fraction: float, message: str) -> None:
    pass
