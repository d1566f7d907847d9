"""Training data with a known shape for tests of what a model is made of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def categorical_training_file(path: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    """A numeric feature `a`, a pandas 'category' feature `colour` and a
    label `y` that needs both, written to `path` (Parquet): what a model
    fitted with a categorical feature is made from. Returns the frame."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], rows)),
        }
    )
    frame["y"] = ((frame.a > 0) ^ (frame.colour == "red")).astype(int)
    frame.to_parquet(path, index=False)
    return frame
