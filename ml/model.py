"""fit and predict: Parquet in, a HistGradientBoostingClassifier, Parquet out.

The two functions are deliberately plain (read with pandas, fit, dump with
joblib; load, predict, write). What is added around them is checking: a user
who uploads the wrong file must get a DataError saying what is wrong with
*their data* and how to fix it, not a scikit-learn traceback. Anything else
that goes wrong is a bug or an infrastructure problem and is left to propagate.

pandas, scikit-learn and joblib are imported at module level on purpose: the
trainer's worker process imports this module once and then runs many jobs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import is_numeric_dtype
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.multiclass import type_of_target

TARGET = "y"

Progress = Callable[[float, str], None]

# What pandas/pyarrow raise for a file that is not (valid) Parquet; a corrupt
# page can surface as OSError ("Couldn't deserialize thrift").
_UNREADABLE = (pa.ArrowException, ValueError, OSError)


class DataError(ValueError):
    """A problem with the user's data. str() is the complete message for the
    user: what is wrong and what to change before uploading again."""


@dataclass(frozen=True)
class FitSummary:
    rows: int
    features: list[str]
    classes: list


@dataclass(frozen=True)
class PredictSummary:
    rows: int


def fit(
    train_path: str | Path, model_path: str | Path, params: dict | None = None, progress: Progress | None = None
) -> FitSummary:
    """Fit a HistGradientBoostingClassifier on the Parquet file `train_path`
    (target column `y`, every other column a feature) and save it with joblib.

    `params` are HistGradientBoostingClassifier keyword arguments (see
    ml.params.to_sklearn_kwargs). `progress(fraction, message)` is called at
    stage boundaries. Raises DataError if the data cannot be trained on.
    """
    report = progress or _no_progress
    report(0.05, "reading training data")
    df = _read_parquet(train_path, "training data")
    _check_training_data(df, max_bins=(params or {}).get("max_bins") or 255)

    X = df.drop(columns=[TARGET])
    y = df[TARGET]
    report(0.15, f"fitting on {_count(len(X), 'row')} × {_count(X.shape[1], 'feature')}")
    model = HistGradientBoostingClassifier(**(params or {})).fit(X, y)

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
    model was trained on is missing or unusable.
    """
    report = progress or _no_progress
    report(0.05, "loading the model")
    model = joblib.load(model_path)
    report(0.10, "reading prediction data")
    df = _read_parquet(data_path, "prediction data")
    features = list(model.feature_names_in_)
    _check_prediction_data(df, features, categorical=model.is_categorical_)

    X = df[features]
    report(0.20, f"predicting {_count(len(X), 'row')}")
    predictions = pd.DataFrame({TARGET: model.predict(X)})

    report(0.90, "writing predictions")
    predictions.to_parquet(predictions_path, index=False)
    return PredictSummary(rows=len(predictions))


def _read_parquet(path: str | Path, what: str) -> pd.DataFrame:
    """pd.read_parquet, with an unreadable file reported as the user's DataError."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise  # our file, not the user's data
    except _UNREADABLE as exc:
        raise _unreadable(what, path, exc) from exc


# -- checks: each raises DataError with the fix in the message ----------------


def _check_training_data(df: pd.DataFrame, max_bins: int) -> None:
    """Refuse training data that HistGradientBoostingClassifier would reject
    with an obscure error (or, for some, a misleading one)."""
    if TARGET not in df.columns:
        hint = ""
        near = [str(c) for c in df.columns if str(c).strip().lower() == TARGET]
        if near:
            hint = f" (found {near[0]!r}: column names are case-sensitive, rename it to 'y')"
        raise DataError(
            f"training data has no column 'y'{hint}; columns found: {_names(df.columns) or '(none)'}. "
            "Add the target column 'y' (the label to learn) and upload again."
        )
    if len(df) == 0:
        raise DataError(
            "training data has 0 rows. Upload a file with labelled rows (at least two different classes in 'y')."
        )
    X, y = df.drop(columns=[TARGET]), df[TARGET]
    if X.shape[1] == 0:
        raise DataError(
            "training data has no feature columns: only 'y' was found. "
            "Add the columns to learn from (every column other than 'y' is a feature) and upload again."
        )

    missing_labels = int(y.isna().sum())
    if missing_labels:
        raise DataError(
            f"'y' is missing in {missing_labels} of {len(y)} rows; every training row needs a label. "
            "Fill in 'y' or drop those rows and upload again."
        )
    classes = y.drop_duplicates().tolist()  # Python scalars, for the messages
    if len(classes) < 2:
        raise DataError(
            f"training data needs at least two classes in 'y'; found only 1 (every row has y = {classes[0]!r}). "
            "Add rows of another class and upload again."
        )
    kind = _target_kind(y)
    if kind not in ("binary", "multiclass"):
        raise DataError(
            f"'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds {kind} values, "
            f"e.g. {_names(map(repr, classes[:3]), limit=3)}. "
            "HistGradientBoostingClassifier predicts classes: put a class label in 'y' and upload again."
        )

    _check_features(X.select_dtypes(exclude="category"), "training data")
    empty = [name for name, column in X.items() if column.isna().all()]
    if empty:
        it = "it" if len(empty) == 1 else "them"
        raise DataError(
            f"training data has {_count(len(empty), 'feature column')} with no values (missing in every row): "
            f"{_names(empty)}. Drop {it} or fill {it} in and upload again."
        )
    for name, column in X.items():
        distinct = column.nunique() if isinstance(column.dtype, pd.CategoricalDtype) else 0
        if distinct > max_bins:
            raise DataError(
                f"categorical feature column {name!r} has {distinct} distinct values; "
                f"HistGradientBoostingClassifier takes at most {max_bins} (max_bins) per categorical column. "
                "Merge rare categories, encode the column as numbers, or drop it, and upload again."
            )


def _check_prediction_data(df: pd.DataFrame, features: list[str], categorical) -> None:
    """Refuse prediction data that does not have the model's features.

    `categorical` is the model's `is_categorical_` (None: no categorical
    features). Those columns go through sklearn's category encoder, which also
    takes plain text, so only the numeric features are checked for type.
    """
    missing = [name for name in features if name not in df.columns]
    if missing:
        raise DataError(
            f"prediction data is missing {_count(len(missing), 'column')} the model was trained on: {_names(missing)}. "
            f"Upload a file with every training feature column ({_names(features, limit=10, head=5)}) "
            "— extra columns are ignored."
        )
    if len(df) == 0:
        raise DataError("prediction data has 0 rows. Upload a file with at least one row to predict.")
    if categorical is not None:
        features = [name for name, is_category in zip(features, categorical) if not is_category]
    _check_features(df[features], "prediction data")


def _check_features(X: pd.DataFrame, what: str) -> None:
    """Refuse columns HistGradientBoostingClassifier cannot use as numeric features.

    Callers pass only the columns that will not be treated as categorical
    (pandas 'category' columns, which a Parquet dictionary column reads as, go
    through sklearn's category encoder instead).
    """
    unusable = [f"{name} ({column.dtype})" for name, column in X.items() if not _numeric_enough(column)]
    if unusable:
        it = "it" if len(unusable) == 1 else "them"
        raise DataError(
            f"{what} has {_count(len(unusable), 'feature column')} HistGradientBoostingClassifier cannot use: "
            f"{_names(unusable)}. Encode {it} as numbers (or store categories as a pandas 'category' column, "
            f"at most 255 distinct values), or drop {it}, and upload again."
        )


def _numeric_enough(column: pd.Series) -> bool:
    """Whether sklearn can turn `column` into float64, as it does for every
    non-categorical feature: numbers and booleans, but also text that holds
    numbers and Parquet decimals (read as objects). Dates and durations are
    refused even though numpy can convert them, because sklearn refuses them."""
    if is_numeric_dtype(column.dtype):
        return True
    if column.dtype.kind in "mM":
        return False
    try:
        np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def _target_kind(y: pd.Series) -> str:
    """sklearn's name for what `y` holds: "binary", "multiclass", "continuous"…"""
    try:
        return type_of_target(y)
    except ValueError:  # e.g. lists in the cells
        return "unsupported"


# -- message helpers ---------------------------------------------------------


def _names(names: Iterable, limit: int = 60, head: int = 50) -> str:
    """"a, b, c"; when there are more than `limit`, the first `head` and
    "… and N more", so a message stays readable for wide tables."""
    names = [str(name) for name in names]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:head]) + f", … and {len(names) - head} more"


def _count(n: int, noun: str) -> str:
    """"1 column", "3 columns"."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _unreadable(what: str, path: str | Path, exc: Exception) -> DataError:
    # pyarrow quotes the local (temporary) path, which means nothing to the user.
    reason = str(exc).replace(f" '{path}'", "")
    return DataError(
        f"could not read {what} as Parquet: {reason}. "
        "Upload a valid Parquet file (e.g. written with pandas DataFrame.to_parquet)."
    )


def _no_progress(fraction: float, message: str) -> None:
    pass
