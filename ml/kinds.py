"""What a column holds, in the user's words, and the same columns as numbers.

The messages of the data checks say "text here, numbers in training", not
"object" or "ArrowDtype(large_string)": `kind` and `kind_name` name what a
column holds, `category_kinds` what a model's categorical features held in
training.

`as_numeric_features` is the conversion scikit-learn applies to every
non-categorical feature, done here so that it is checked: what passes is
exactly what is fitted on or predicted from, and a column that passed
cannot fail inside scikit-learn.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import infer_dtype
from sklearn.ensemble import HistGradientBoostingClassifier

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


def kind(column: pd.Series) -> str:
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


def kind_name(column: pd.Series) -> str:
    """How a column is named in messages: its pandas type ("str",
    "datetime64[us]"), which the user can look up, or for 'object' and
    'category' columns (whose type says little) what the values are
    ("lists", "category of text")."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return f"category of {kind(column)}"
    return kind(column) if column.dtype == object else str(column.dtype)


def categorical(model: HistGradientBoostingClassifier) -> list[bool]:
    """Per feature (model order), whether the model fitted it as categorical."""
    if model.is_categorical_ is None:
        return [False] * model.n_features_in_
    return model.is_categorical_.tolist()


def category_kinds(model: HistGradientBoostingClassifier) -> dict[str, str]:
    """What each categorical feature held in training ("text", "numbers"…),
    from the categories sklearn's encoder learned. That encoder sits behind
    a private attribute, hence the guard: {} (no check) if it is not found."""
    try:
        encoder = model._preprocessor.named_transformers_["encoder"]  # noqa: SLF001 - guarded
        names, categories = encoder.feature_names_in_, encoder.categories_
    except (AttributeError, KeyError):
        return {}
    return {
        name: kind(pd.Series(values).dropna())
        for name, values in zip(names, categories, strict=True)
    }


def as_numeric_features(
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


def replace_columns(X: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    """`X` with the given columns swapped in, in place of their namesakes (same order)."""
    if not columns:
        return X
    return pd.DataFrame(
        {name: columns.get(name, column) for name, column in X.items()}, index=X.index
    )
