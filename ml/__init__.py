"""Model training for fityard: `fit` and `predict` on Parquet files.

The names from ml.model (fit, predict, FitSummary, PredictSummary) load on
first use (PEP 562): `from ml.params import validate_params` imports this
package first, and the gateway and scheduler must not pay for pandas and
scikit-learn to check a few numbers. The trainer's worker touches `ml.fit`
once at start and so pays the import there. DataError and the message bounds
(`bounded`, `name_list`) come from ml.messages, which is light, so any
service can cap a message or catch a DataError without that import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml.messages import DataError, bounded, name_list
from ml.params import to_sklearn_kwargs, validate_params

__all__ = [
    "DataError",
    "FitSummary",
    "PredictSummary",
    "bounded",
    "fit",
    "name_list",
    "predict",
    "predict_frame",
    "probability_column",
    "to_sklearn_kwargs",
    "validate_params",
]

_MODEL_NAMES = {
    "FitSummary",
    "PredictSummary",
    "fit",
    "predict",
    "predict_frame",
    "probability_column",
}

if TYPE_CHECKING:
    from ml.model import (
        FitSummary,
        PredictSummary,
        fit,
        predict,
        predict_frame,
        probability_column,
    )


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from ml import model

        return getattr(model, name)
    raise AttributeError(f"module 'ml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
