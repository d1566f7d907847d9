"""Checking fit parameters before a job is queued.

The scheduler calls `validate_params` on every fit request so that a bad value
is refused at once, with a message naming the field, instead of failing on a
trainer minutes later with scikit-learn's wording. This module deliberately
imports neither scikit-learn nor pandas: the gateway and scheduler import it
and must stay light. The ranges below copy HistGradientBoostingClassifier's
own constraints; tests/test_ml.py compares them with sklearn's
`_parameter_constraints` so they cannot drift apart silently.

One parameter is ours rather than sklearn's: `validation_fraction`. ml.fit
makes the held-out split itself (so that it can report the seed and score
exactly those rows), hence only a fraction strictly between 0 and 1, where
sklearn would also take a row count or None.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, NamedTuple


class Range(NamedTuple):
    """Allowed values of a numeric parameter: `kind` is Integral or Real;
    `low` is exclusive when `low_open`, `high` (None: unbounded) when
    `high_open`; both are inclusive otherwise."""

    kind: type
    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False


RANGES: dict[str, Range] = {
    "learning_rate": Range(Real, 0, low_open=True),
    "max_iter": Range(Integral, 1),
    "max_leaf_nodes": Range(Integral, 2),
    "max_depth": Range(Integral, 1),
    "min_samples_leaf": Range(Integral, 1),
    "l2_regularization": Range(Real, 0),
    "max_bins": Range(Integral, 2, 255),
    # numpy's RandomState takes seeds 0 .. 2**32 - 1 (sklearn checks only at fit).
    "random_state": Range(Integral, 0, 2**32 - 1),
    # Ours, not sklearn's: see the module docstring.
    "validation_fraction": Range(Real, 0, 1, low_open=True, high_open=True),
}

# The strings a request may carry (FitParams.early_stopping) and what sklearn takes.
EARLY_STOPPING: dict[str, str | bool] = {"auto": "auto", "true": True, "false": False}

NAMES: tuple[str, ...] = (*RANGES, "early_stopping")


def validate_params(params: dict[str, Any]) -> list[str]:
    """Return one message per bad parameter, e.g.
    "params.max_bins must be between 2 and 255 (got 300)"; empty if all good.

    A value of None means "not set" (sklearn's default) and is always fine.
    """
    problems = []
    for name, value in params.items():
        if value is None:
            continue
        if name == "early_stopping":
            if _early_stopping(value) is None:
                problems.append(
                    f'params.early_stopping must be "auto", "true" or "false" (got {value!r})'
                )
        elif name in RANGES:
            problem = _range_problem(RANGES[name], value)
            if problem:
                problems.append(f"params.{name} must be {problem} (got {value!r})")
        else:
            problems.append(f"params.{name} is not a fit parameter; known: {', '.join(NAMES)}")
    return problems


def to_sklearn_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for HistGradientBoostingClassifier from request params.

    Converts early_stopping's strings to what sklearn takes ("auto", True,
    False) and drops unset (None) values. Raises ValueError listing the
    problems if the params are not valid, so a bad value never reaches sklearn
    (admission has normally refused it already).

    `validation_fraction` is kept for ml.fit, which holds the rows out itself
    and does not hand it on to sklearn.
    """
    problems = validate_params(params)
    if problems:
        raise ValueError("; ".join(problems))
    kwargs = {name: value for name, value in params.items() if value is not None}
    if "early_stopping" in kwargs:
        kwargs["early_stopping"] = _early_stopping(kwargs["early_stopping"])
    return kwargs


def _early_stopping(value: Any) -> str | bool | None:
    """sklearn's value for an early_stopping setting, or None if it is not one.
    Booleans are accepted too, for Python callers; strings in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return EARLY_STOPPING.get(value.strip().lower())
    return None


def _range_problem(allowed: Range, value: Any) -> str:
    """What `value` must be, if it is not allowed; "" if it is."""
    # bool is an Integral in Python, but max_iter=True is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, allowed.kind):
        return "an integer" if allowed.kind is Integral else "a number"
    if allowed.kind is Real and not math.isfinite(value):
        return "a finite number"
    too_low = value <= allowed.low if allowed.low_open else value < allowed.low
    too_high = allowed.high is not None and (
        value >= allowed.high if allowed.high_open else value > allowed.high
    )
    if not (too_low or too_high):
        return ""
    if allowed.high is None:
        return f"greater than {allowed.low}" if allowed.low_open else f"at least {allowed.low}"
    between = f"between {allowed.low} and {allowed.high}"
    if allowed.low_open and allowed.high_open:
        return f"{between} (exclusive)"
    if allowed.low_open or allowed.high_open:
        return f"{between} (excluding {allowed.low if allowed.low_open else allowed.high})"
    return between
