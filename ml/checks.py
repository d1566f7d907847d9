"""The checks on the data of a fit or a predict: each raises DataError with the fix in the message.

A user who uploads the wrong file must get a DataError saying what is wrong
with *their data* and how to fix it, not a scikit-learn traceback (or, for
some data, a misleading error, or one after hours of work). So the data is
checked before scikit-learn sees it, and handed over in the form it was
checked in: feature columns that are not plain numpy numbers (text holding
numbers, decimals, pandas' nullable and Arrow-backed types) are converted
to float64 (ml.kinds), and nullable or decimal labels to plain numbers, so
what was checked is exactly what is fitted on or predicted from.

The checks that need only column names live in ml.columns, which the
scheduler shares at submission; these need the values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_numeric_dtype
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.multiclass import type_of_target

from ml.columns import TARGET, check_prediction_columns, check_training_columns, near_target
from ml.kinds import (
    as_numeric_features,
    categorical,
    category_kinds,
    kind,
    kind_name,
    replace_columns,
)
from ml.messages import DataError, count, name_list, quoted, shown
from ml.reading import check_distinct_names, index_hint
from ml.split import Split, check_split

# -- training data -------------------------------------------------------------


def training_data(
    df: pd.DataFrame, params: dict, max_classes: int | None, split: Split | None
) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels to fit on, or a DataError for data that
    HistGradientBoostingClassifier would reject with an obscure error (or, for
    some, a misleading one, or after hours of work).

    The label checks come first: they are cheap and a wrong `y` (ids, say)
    makes everything else moot.
    """
    hint = near_target(df.columns) or index_hint(df, [TARGET])  # why 'y' may seem to be there
    check_training_columns(list(df.columns), len(df), hint=hint)
    X, y = df.drop(columns=[TARGET]), _labels(df[TARGET])
    classes = _check_labels(y, max_classes)
    check_split(y, split, n_classes=len(classes))
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
    held = kind(y)
    if held in ("lists", "structs", "bytes"):
        raise DataError(
            f"'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds {held}, "
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
            f"training data needs at least two classes in 'y'; found only 1 (every row has y = {shown(classes[0])}). "
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
    target = _target_kind(y)
    if target not in ("binary", "multiclass"):
        raise DataError(
            f"'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds {target} values, "
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


def _target_kind(y: pd.Series) -> str:
    """sklearn's name for what `y` holds: "binary", "multiclass", "continuous"…"""
    try:
        return type_of_target(y)
    except ValueError:  # e.g. lists in the cells
        return "unsupported"


def _training_features(X: pd.DataFrame, max_bins: int) -> pd.DataFrame:
    """The feature columns as scikit-learn is to get them: 'category'
    columns as they are (a Parquet dictionary column reads as one; sklearn
    encodes them), every other column as numbers."""
    numeric, unusable = as_numeric_features(X.select_dtypes(exclude="category"))
    if unusable:
        it = "it" if len(unusable) == 1 else "them"
        raise DataError(
            f"training data has {count(len(unusable), 'feature column')} HistGradientBoostingClassifier cannot use: "
            f"{name_list(unusable, describe=lambda name: kind_name(X[name]))}. Encode {it} as numbers "
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
    return replace_columns(X, numeric)


# -- prediction data -----------------------------------------------------------


def prediction_data(
    df: pd.DataFrame, model: HistGradientBoostingClassifier, *, online: bool = False
) -> pd.DataFrame:
    """The model's feature columns from `df`, in the model's order, as
    scikit-learn is to get them; a DataError if one is missing or holds
    another kind of values than in training (`_check_kinds`).

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
        check_distinct_names(columns, "prediction data", online=online)
    features = model.feature_names_in_.tolist()
    check_prediction_columns(
        columns,
        features,
        len(df),
        hint=lambda missing: index_hint(df, missing),
        online=online,
    )
    X = df if columns == features else df.take(_positions(columns, features), axis=1)
    categorical_features = {
        name for name, is_category in zip(features, categorical(model), strict=True) if is_category
    }
    numeric, unusable = as_numeric_features(X, skip=categorical_features)
    _check_kinds(X, model, features, categorical_features, unusable, online=online)
    return replace_columns(X, numeric)


def _check_kinds(
    X: pd.DataFrame,
    model: HistGradientBoostingClassifier,
    features: list,
    categorical_features: set,
    unusable: list,
    *,
    online: bool,
) -> None:
    """A DataError naming the features that hold another kind of values
    than in training: `unusable` (numeric ones that do not convert to
    numbers), and categorical ones (the model's `is_categorical_`) of
    another kind. Those go through sklearn's category encoder, which also
    takes plain text (files written by other tools often lose the
    dictionary encoding), but must hold the same kind of values as in
    training: numbers given for text categories crash the encoder, and text
    for number categories (or bytes for text) would all be unknown
    categories, silently predicted as if missing."""
    trained = dict.fromkeys(features, "numbers")
    mismatched = {name: kind_name(X[name]) for name in unusable}
    if categorical_features:
        trained.update(category_kinds(model))
        for name in categorical_features:
            column = X[name]
            if not column.isna().all() and kind(column) != trained[name]:
                mismatched[name] = kind_name(column)
    if not mismatched:
        return
    names = [name for name in features if name in mismatched]  # in the model's order
    them = "it" if len(names) == 1 else "them"
    listed = name_list(
        names, describe=lambda name: f"{mismatched[name]} here, {trained[name]} in training"
    )
    fix = f"Send {them}" if online else f"Store {them}"
    again = "" if online else " and upload again"
    raise DataError(
        f"prediction data has {count(len(names), 'feature column')} holding other values than the model "
        f"was trained on: {listed}. "
        f"{fix} as in the training data (numbers for numbers, text for categories){again}.",
        columns=names,
    )


def _positions(columns: list, names: list) -> list[int]:
    """Where each of `names` is in `columns` (all there, each once): a dict,
    where pandas' own lookup of text names costs more than a short prediction."""
    where = {name: i for i, name in enumerate(columns)}
    return [where[name] for name in names]
