"""The rows a fit holds out: how many, drawn how, and whether `y` allows it.

Rows held out from a fit (for early stopping, or for a score the user asked
for with validation_fraction) are split here, not inside scikit-learn, so
that the split can be reported (fraction and seed) and reproduced by the
user with one train_test_split call, and the score is computed on exactly
the rows early stopping saw and the model was not trained on.

The split is stratified by class, which some labels do not allow (a class
of one row, more classes than a part has rows): `check_split` says so
before any work, with the settings that would work.
"""

from __future__ import annotations

import math
import secrets
from typing import NamedTuple

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from ml.messages import DataError, count, name_list
from ml.params import validate_params

# scikit-learn's early_stopping="auto" is on above this many rows, and then
# holds out its default validation_fraction (read from sklearn, not copied).
AUTO_EARLY_STOPPING_ROWS = 10_000
DEFAULT_VALIDATION_FRACTION = HistGradientBoostingClassifier().validation_fraction

# Seeds for a held-out split when random_state is not set: what numpy's
# RandomState takes (ml.params.RANGES["random_state"]), upper end excluded.
SEED_LIMIT = 2**32 - 1


class Split(NamedTuple):
    """How a fit holds rows out: `fraction` of them, split with `seed`.
    `early_stopping`: scikit-learn stops on them (otherwise they are only
    scored). `asked`: the fraction is the user's validation_fraction, not
    early stopping's default, which changes what a message says to fix."""

    fraction: float
    seed: int
    early_stopping: bool
    asked: bool


def held_out_split(params: dict, rows: int) -> Split | None:
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
    return Split(
        fraction=DEFAULT_VALIDATION_FRACTION if fraction is None else float(fraction),
        seed=secrets.randbelow(SEED_LIMIT) if seed is None else int(seed),
        early_stopping=early_stopping,
        asked=fraction is not None,
    )


def hold_out(
    X: pd.DataFrame, y: pd.Series, split: Split | None
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Series, pd.Series | None]:
    """(X, X_val, y, y_val): the rows to train on and those `split` holds
    out (None and None if it is None), as the user can rebuild them."""
    if split is None:
        return X, None, y, None
    return train_test_split(X, y, test_size=split.fraction, stratify=y, random_state=split.seed)


def check_split(y: pd.Series, split: Split | None, n_classes: int) -> None:
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


def _no_split(split: Split) -> str:
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
