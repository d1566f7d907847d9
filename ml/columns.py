"""The checks that need only a table's column names and row count, shared
by the trainer (ml.model, on the DataFrame it read) and the scheduler (on
the schema the gateway recorded at upload), so that a file that cannot be
trained on is refused at submission with the very message the trainer
would give, before it waits in any queue.

Light on purpose (no pandas): the scheduler imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ml.messages import DataError, count, name_list, quoted

TARGET = "y"


def near_target(columns: Sequence) -> str:
    """Why 'y' may seem to be there (a column 'Y' or ' y'), as a hint for
    the "no column 'y'" message; "" if nothing is close."""
    near = [name for name in columns if str(name).strip().lower() == TARGET]
    if near:
        return f" (found {quoted(near[0])}: rename it to 'y'; names must match exactly, in case and spaces)"
    return ""


def check_training_columns(columns: Sequence, rows: int | None, hint: str | None = None) -> None:
    """DataError unless `columns` hold the target `y` and at least one
    feature, in at least one row (`rows` None: not known yet). `hint`: what
    to add to the "no column 'y'" message (default: near_target's)."""
    if TARGET not in columns:
        hint = near_target(columns) if hint is None else hint
        raise DataError(
            f"training data has no column 'y'{hint}; columns found: {name_list(columns)}. "
            "Add the target column 'y' (the label to learn) and upload again."
        )
    if rows == 0:
        raise DataError(
            "training data has 0 rows. Upload a file with labelled rows (at least two different classes in 'y')."
        )
    if len(columns) < 2:
        raise DataError(
            "training data has no feature columns: only 'y' was found. "
            "Add the columns to learn from (every column other than 'y' is a feature) and upload again."
        )


def check_prediction_columns(
    columns: Sequence,
    features: Sequence[str],
    rows: int | None,
    hint: Callable[[list], str] = lambda missing: "",
    *,
    online: bool = False,
) -> None:
    """DataError unless `columns` hold every feature the model was trained
    on, in at least one row (`rows` None: not known yet). `hint(missing)`:
    what to add after the missing names (the trainer explains an index).
    `online`: the rows came in a request, not a file, and the fix says so.

    The error's `columns` are the missing features, in the model's order."""
    present = set(columns)
    missing = [name for name in features if name not in present]
    if missing:
        every = f"every training feature column ({name_list(features, limit=5)})"
        fix = f"Send {every} in each row" if online else f"Upload a file with {every}"
        raise DataError(
            f"prediction data is missing {count(len(missing), 'column')} the model was trained on: "
            f"{name_list(missing)}{hint(missing)}. {fix} — extra columns are ignored.",
            columns=missing,
        )
    if rows == 0:
        fix = "Send" if online else "Upload a file with"
        raise DataError(f"prediction data has 0 rows. {fix} at least one row to predict.")
