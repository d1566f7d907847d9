"""The model file: how it is written, how it is read back, and how its answers are read.

A model is a fitted HistGradientBoostingClassifier dumped with joblib, and
joblib.load unpickles, which can run any code the file holds. So a model
file that comes back from the store (to the trainer's worker for a batch
predict, to a predictor for online ones) is loaded only after its bytes
hash to the SHA-256 recorded when it was saved: `save` gives that digest
(the fit's job record keeps it as model_sha256) and `load` checks it, with
one message, whoever loads. `read` is for a file of your own, written here
by `fit` (tests, benchmarks, a local `ml.predict`): nothing to check it
against.

"Most probable label" is here too, once: a batch predict with
probabilities, an online answer and its Arrow answer all give the class of
highest probability, and must give the same one for the same row.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

CHUNK_BYTES = 1 << 20  # read at a time while hashing a file


class ModelAltered(Exception):
    """A model file that is not the one its fit saved (or whose fit recorded
    no digest): it was not loaded. str() is the message for the user."""


@dataclass(frozen=True)
class Saved:
    """A model file as `save` wrote it."""

    sha256: str  # hex digest of the file's bytes: what `load` checks
    size: int  # bytes


def save(estimator: Any, path: str | Path) -> Saved:
    """Dump `estimator` to `path` with joblib; its digest and size."""
    joblib.dump(estimator, path)
    return Saved(sha256=_file_digest(path), size=Path(path).stat().st_size)


def load(source: str | Path | bytes, sha256: str, name: str) -> Any:
    """The estimator in `source` (a model file's path, or its bytes), loaded
    only if those bytes hash to `sha256`, the digest recorded when it was
    saved; ModelAltered otherwise, before anything is unpickled, and also
    when no digest was recorded (""). `name` is the model as the user
    knows it, for the message: its fit job's resource name (jobs/job_…)."""
    data = source if isinstance(source, bytes) else None
    found = hashlib.sha256(data).hexdigest() if data is not None else _file_digest(source)
    if not sha256 or found != sha256:
        why = (
            "has no recorded checksum (it was trained before models were checksummed)"
            if not sha256
            else "does not match the checksum recorded when it was trained: it was changed in the store"
        )
        raise ModelAltered(
            f"the model of {name} {why}; it was not loaded. Train the model again "
            "and predict with the new one"
        )
    return joblib.load(io.BytesIO(data) if data is not None else source)


def read(path: str | Path) -> Any:
    """The estimator in a model file of your own (written by `fit` on this
    machine), unchecked: a file from anywhere else goes through `load`."""
    return joblib.load(path)


def most_probable(classes: np.ndarray | Sequence, probabilities: np.ndarray) -> Any:
    """The class of highest probability for each row of `probabilities`
    (one column per class, in the order of `classes`: the estimator's
    classes_, or anything in that order, such as their wire values). An
    array of `classes` gives an array, any other sequence a list.

    That is what estimator.predict gives, without predicting a second
    time, and always agrees with the probabilities shown beside it; predict
    decides on the raw scores, so for two probabilities equal to the last
    bit it may take the other one (argmax takes the first)."""
    best = probabilities.argmax(axis=1)
    if isinstance(classes, np.ndarray):
        return classes[best]
    return [classes[i] for i in best.tolist()]


def _file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read a chunk at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
