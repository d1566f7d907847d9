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

pandas, scikit-learn and joblib are imported at module level on purpose: the
trainer's worker process imports this module once and then runs many jobs.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import infer_dtype, is_numeric_dtype
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.multiclass import type_of_target

from ml.columns import TARGET, check_prediction_columns, check_training_columns, near_target
from ml.messages import DataError, bounded, count, name_list, quoted

# The default for fit(max_classes=...); the trainer passes its configured
# FITYARD_MAX_CLASSES. HistGradientBoostingClassifier grows one tree per class
# per iteration, so a label column of ids would run for hours and then fail
# for lack of memory: it is refused up front instead.
MAX_CLASSES = 1000

Progress = Callable[[float, str], None]

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
class FitSummary:
    rows: int
    features: list[str]
    classes: list


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
    (target column `y`, every other column a feature) and save it with joblib.

    `params` are HistGradientBoostingClassifier keyword arguments (see
    ml.params.to_sklearn_kwargs). `progress(fraction, message)` is called at
    stage boundaries. `max_classes` is the most distinct values `y` may hold
    (None: no limit). Raises DataError if the data cannot be trained on.
    """
    report = progress or _no_progress
    params = params or {}
    report(0.05, "reading training data")
    df = _read_parquet(train_path, "training data")
    X, y = _training_data(df, params, max_classes)

    report(0.15, f"fitting on {count(len(X), 'row')} × {count(X.shape[1], 'feature')}")
    with contextlib.redirect_stdout(_Rounds(report, 0.15, 0.95)):
        # verbose=2 prints one line per boosting round, read as progress; it
        # changes what is printed, never what is fitted (tests/test_ml.py)
        model = HistGradientBoostingClassifier(**{**params, "verbose": 2}).fit(X, y)
    model.set_params(verbose=params.get("verbose", 0))

    report(0.95, "saving the model")
    joblib.dump(model, model_path)
    return FitSummary(rows=len(X), features=list(X.columns), classes=model.classes_.tolist())


def predict(
    model_path: str | Path,
    data_path: str | Path,
    predictions_path: str | Path,
    progress: Progress | None = None,
) -> PredictSummary:
    """Predict `y` for every row of the Parquet file `data_path` with the
    model saved by `fit`; write Parquet with exactly one column `y`.

    Columns are matched by name, so their order does not matter and extra
    columns (including a `y`) are ignored. Raises DataError if a feature the
    model was trained on is missing or holds values of another kind than in
    training (text where it had numbers, say).
    """
    report = progress or _no_progress
    report(0.05, "loading the model")
    model = joblib.load(model_path)
    report(0.10, "reading prediction data")
    df = _read_parquet(data_path, "prediction data")
    X = _prediction_data(df, model)

    report(0.20, f"predicting {count(len(X), 'row')}")
    predictions = pd.DataFrame({TARGET: model.predict(X)})

    report(0.90, "writing predictions")
    predictions.to_parquet(predictions_path, index=False)
    return PredictSummary(rows=len(predictions))


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
    df: pd.DataFrame, params: dict, max_classes: int | None
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
    _check_early_stopping_split(y, params, n_classes=len(classes))
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


def _check_early_stopping_split(y: pd.Series, params: dict, n_classes: int) -> None:
    """With early stopping (on by default above 10,000 rows, as in
    scikit-learn), HistGradientBoostingClassifier holds out a validation
    fraction stratified by class, which fails for a class with a single row
    or more classes than either part has rows, with a message in terms of
    encoded classes the user never saw."""
    early_stopping = params.get("early_stopping", "auto")
    fraction = params.get("validation_fraction", 0.1)
    n = len(y)
    if (
        not (early_stopping is True or (early_stopping == "auto" and n > 10_000))
        or fraction is None
    ):
        return
    held_out = math.ceil(fraction * n) if isinstance(fraction, float) else int(fraction)
    fix = 'or fit with the parameter early_stopping set to "false"'
    counts = y.value_counts()
    single = counts.index[counts == 1].tolist()
    if single:
        raise DataError(
            f"early stopping holds out {held_out:,} of {count(n, 'row')} for validation, stratified by class, "
            f"so every class in 'y' needs at least 2 rows; {count(len(single), 'class')} "
            f"{'has' if len(single) == 1 else 'have'} only one: {name_list(single)}. "
            f"Add rows of {'that class' if len(single) == 1 else 'those classes'} or drop "
            f"{'it' if len(single) == 1 else 'them'}, {fix}, and upload again."
        )
    if min(held_out, n - held_out) < n_classes:
        raise DataError(
            f"early stopping holds out {held_out:,} of {count(n, 'row')} for validation, stratified by class, "
            f"which is too few rows for the {n_classes:,} classes in 'y'. "
            f"Add rows, use fewer classes, {fix}, and upload again."
        )


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


def _prediction_data(df: pd.DataFrame, model: HistGradientBoostingClassifier) -> pd.DataFrame:
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
    """
    features = list(model.feature_names_in_)
    check_prediction_columns(
        list(df.columns), features, len(df), hint=lambda missing: _index_hint(df, missing)
    )
    X = df[features]
    categorical = (
        model.is_categorical_ if model.is_categorical_ is not None else [False] * len(features)
    )
    numeric_names = [
        name for name, is_category in zip(features, categorical, strict=True) if not is_category
    ]
    numeric, unusable = _as_numeric_features(X[numeric_names])
    trained = {name: "numbers" for name in numeric_names}
    trained.update(_category_kinds(model))
    mismatched = {name: _kind_name(X[name]) for name in unusable}
    for name in set(features) - set(numeric_names):
        column = X[name]
        if name in trained and not column.isna().all() and _kind(column) != trained[name]:
            mismatched[name] = _kind_name(column)
    if mismatched:
        names = [name for name in features if name in mismatched]  # in the model's order
        them = "it" if len(names) == 1 else "them"
        shown = name_list(
            names, describe=lambda name: f"{mismatched[name]} here, {trained[name]} in training"
        )
        raise DataError(
            f"prediction data has {count(len(names), 'feature column')} holding other values than the model "
            f"was trained on: {shown}. "
            f"Store {them} as in the training data (numbers for numbers, text for categories) and upload again."
        )
    return _replace_columns(X, numeric)


def _check_distinct_names(names, what: str) -> None:
    repeated = {name: n for name, n in Counter(names).items() if n > 1}
    if repeated:
        names = name_list(repeated, describe=lambda name: f"{repeated[name]} times")
        raise DataError(
            f"{what} has more than one column named {names}. "
            "Each column needs its own name: rename or drop the duplicates and upload again."
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


def _as_numeric_features(X: pd.DataFrame) -> tuple[dict[str, pd.Series], list]:
    """Columns of `X` converted to float64 where they are not plain numpy
    numbers already, and the names of those that cannot be converted.

    This is the conversion sklearn applies to every non-categorical feature,
    done here so that it is checked: numbers and booleans, but also text that
    holds numbers, Parquet decimals (read as objects) and pandas' nullable and
    Arrow-backed types, whose missing values sklearn cannot convert itself.
    Dates and durations are refused even though numpy can convert them,
    because sklearn refuses them.
    """
    converted, unusable = {}, []
    for name, column in X.items():
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            continue
        if dtype.kind in "mM":
            unusable.append(name)
            continue
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
