"""Models compiled for online predictions (Treelite), exact or not used.

scikit-learn's predict_proba costs 0.35-0.7 ms per call whatever the rows:
checks and a Python walk over the trees. Treelite imports the same trees
and walks them in C++ (its GTIL: `treelite.gtil.predict`), about 20 µs for
one row of the seed's model. A predictor compiles each model it loads
(ModelCache) and answers through the compiled form when it gives
scikit-learn's answers, checked here, once, when it is compiled:

- Treelite computes each class's margin (the trees' sum and the
  baseline, float64 thresholds, missing values sent the way scikit-learn
  sends them) and the margins become probabilities here, in float64, as
  scikit-learn's losses make them (expit for two classes, softmax for
  more). Treelite's own softmax differs from scikit-learn's by up to 6e-8
  on a 3-class model; this way every class count tried matched to 2e-16.
- The check: CHECK_ROWS rows made from the trees' own split thresholds
  (each threshold, the next float on either side, beyond both ends, and
  missing values) predicted both ways; the labels must be equal and every
  probability within TOLERANCE, or the model is refused and served by
  scikit-learn (`Refusal`, logged and counted by the predictor).
- Refused before trying: models with categorical features. Treelite 4.8
  cannot import them (it reads scikit-learn's category values as numbers:
  "invalid literal for int()"), and their rows need scikit-learn's
  encoding anyway.

The batch `predict` of ml/ stays scikit-learn's, as the seed has it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

# The most a compiled probability may differ from scikit-learn's.
TOLERANCE = 1e-9
# Rows predicted both ways when a model is compiled: a few milliseconds.
CHECK_ROWS = 2048
# Refusals, by why (the predictor's metric label).
CANNOT_COMPILE = "cannot_compile"
NOT_REPRODUCED = "not_reproduced"


@dataclass(frozen=True)
class Refusal:
    """Why a model is served by scikit-learn instead of its compiled form."""

    why: str  # CANNOT_COMPILE or NOT_REPRODUCED
    detail: str


class Compiled:
    """A model's trees as Treelite holds them, answering as the estimator."""

    def __init__(self, estimator, forest):
        # One margin per row for two classes, one per class for more.
        self._margins = estimator.n_trees_per_iteration_
        self.forest = forest
        self.trees = forest.num_tree  # what a row's prediction costs, roughly
        # What it holds in memory, give or take: its serialized form.
        self.nbytes = len(forest.serialize_bytes())

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities of the float64 rows `X` (features in the
        model's order, NaN for missing), as estimator.predict_proba gives."""
        import treelite.gtil

        # One thread: a predictor is one core's worth of work (its pool
        # scales with processes); the call is on its prediction thread, or
        # its event loop for a small batch (batching.py).
        margins = treelite.gtil.predict(self.forest, X, nthread=1, pred_margin=True)
        margins = np.asarray(margins, dtype=np.float64).reshape(len(X), self._margins)
        if self._margins > 1:
            return softmax(margins, axis=1)
        positive = expit(margins[:, 0])
        return np.column_stack([1.0 - positive, positive])


def compile_model(estimator) -> Compiled | Refusal:
    """The estimator compiled and checked against itself, or why not."""
    from ml.kinds import categorical

    if any(categorical(estimator)):
        return Refusal(CANNOT_COMPILE, "it has categorical features, which Treelite cannot import")
    import treelite.sklearn

    try:
        compiled = Compiled(estimator, treelite.sklearn.import_model(estimator))
        refusal = check(compiled, estimator, check_rows(compiled))
    except Exception as exc:  # noqa: BLE001 - whatever Treelite cannot take is served as it is
        return Refusal(CANNOT_COMPILE, f"Treelite could not import or run it: {exc}")
    return refusal or compiled


def check(compiled: Compiled, estimator, X: np.ndarray) -> Refusal | None:
    """None if `compiled` answers the rows `X` as `estimator` does (labels
    equal, probabilities within TOLERANCE), else why not."""
    with warnings.catch_warnings():
        # an array has no column names: its columns are the model's features, in order
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        expected = estimator.predict_proba(X)
    got = compiled.predict_proba(X)
    if got.shape != expected.shape:
        return Refusal(NOT_REPRODUCED, f"it gave {got.shape} probabilities, not {expected.shape}")
    differ = int((got.argmax(axis=1) != expected.argmax(axis=1)).sum())
    worst = float(np.abs(got - expected).max(initial=0.0))
    if differ or not worst <= TOLERANCE:
        return Refusal(
            NOT_REPRODUCED,
            f"on {len(X)} check rows, {differ} labels differed and probabilities by up to "
            f"{worst:.1e} (at most {TOLERANCE:.0e} allowed)",
        )
    return None


def check_rows(compiled: Compiled, rows: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """Rows where a compiled tree walk would go astray if it could: each
    feature's value drawn from the thresholds its trees split it at, the
    next float on either side of each, points beyond both ends, and
    missing values."""
    forest = compiled.forest
    splits: list[list[np.ndarray]] = [[] for _ in range(forest.num_feature)]
    for tree_id in range(forest.num_tree):
        tree = forest.get_tree_accessor(tree_id)
        feature = tree.get_field("split_index")
        threshold = tree.get_field("threshold")
        for f in np.unique(feature[feature >= 0]):  # leaves have none
            splits[f].append(threshold[feature == f])
    rng = np.random.default_rng(seed)
    columns = []
    for found in splits:
        t = np.unique(np.concatenate(found)) if found else np.zeros(1)
        t = t[np.isfinite(t)] if np.isfinite(t).any() else np.zeros(1)
        candidates = np.concatenate(
            [
                t,
                np.nextafter(t, -np.inf),
                np.nextafter(t, np.inf),
                [t.min() - 1.0, t.max() + 1.0, np.nan],
            ]
        )
        columns.append(rng.choice(candidates, size=rows))
    return np.column_stack(columns)
