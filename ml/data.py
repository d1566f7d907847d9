"""The seed data: a synthetic classification problem and two broken files.

`make_data` writes the four files every demo and test starts from, so that
the good path (train, test) and the two most common user mistakes (a training
file without the target, a prediction file missing a feature) can be shown
with real files rather than described.
"""

from __future__ import annotations

from pathlib import Path


def make_data(out_dir: str | Path, rows: int = 100_000, seed: int = 0) -> dict[str, Path]:
    """Write train/test Parquet files and their broken variants into `out_dir`.

    `rows` samples with 50 features (`col_0` … `col_49`) and a binary target
    `y`, split 75/25. The test file keeps `y` so accuracy can be checked; the
    service ignores it when predicting. `BAD_train.parquet` lacks `y` and
    `BAD_test.parquet` lacks `col_0`. The same `seed` gives the same files.

    Returns the paths by role: "train", "test", "bad_train", "bad_test".
    """
    # Imported here: the CLI imports this module and should start fast.
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    X, y = make_classification(n_samples=rows, n_features=50, random_state=seed)
    df = pd.DataFrame(X, columns=[f"col_{i}" for i in range(X.shape[1])])
    df["y"] = y
    train, test = train_test_split(df, random_state=seed)

    frames = {
        "train": ("train.parquet", train),
        "test": ("test.parquet", test),
        "bad_train": ("BAD_train.parquet", train.drop(columns=["y"])),
        "bad_test": ("BAD_test.parquet", test.drop(columns=["col_0"])),
    }
    paths = {}
    for role, (name, frame) in frames.items():
        paths[role] = out / name
        frame.to_parquet(paths[role], index=False)
    return paths
