"""ml.artifact without a stack: a saved model comes back only as it was
saved (a changed file or one without a recorded digest is refused before
anything unpickles it, with the message both the worker and the
predictor give), and the most probable label is what predict says."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ml import artifact

NAME = "jobs/job_1"


@pytest.fixture(scope="module")
def estimator():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = np.select([X.a > 0.5, X.b > 0], ["cat", "dog"], "eel")
    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)


@pytest.fixture
def saved(estimator, tmp_path):
    path = tmp_path / "model.joblib"
    return path, artifact.save(estimator, path)


class _Planted:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_saved_model_loads_back_from_its_path_and_its_bytes(estimator, saved):
    path, info = saved
    data = path.read_bytes()
    assert (info.sha256, info.size) == (hashlib.sha256(data).hexdigest(), len(data))
    X = pd.DataFrame({"a": [0.9, -1.0], "b": [0.0, 1.0], "c": [0.0, 0.0]})
    for source in (path, str(path), data):
        loaded = artifact.load(source, info.sha256, NAME)
        assert np.array_equal(loaded.predict_proba(X), estimator.predict_proba(X))
    assert np.array_equal(artifact.read(path).classes_, estimator.classes_)


def test_a_changed_file_is_refused_unloaded_saying_what_to_do(saved, tmp_path):
    path, info = saved
    marker = tmp_path / "unpickled"
    artifact.joblib.dump(_Planted(str(marker)), path)
    for source in (path, path.read_bytes()):
        with pytest.raises(artifact.ModelAltered) as refused:
            artifact.load(source, info.sha256, NAME)
        assert str(refused.value) == (
            "the model of jobs/job_1 does not match the checksum recorded when it was trained: "
            "it was changed in the store; it was not loaded. Train the model again and predict "
            "with the new one"
        )
    assert not marker.exists()  # nothing was unpickled


def test_a_model_without_a_recorded_digest_is_refused(saved):
    path, _ = saved
    with pytest.raises(artifact.ModelAltered) as refused:
        artifact.load(path, "", NAME)
    assert str(refused.value).startswith(
        "the model of jobs/job_1 has no recorded checksum (it was trained before models were "
        "checksummed); it was not loaded. Train the model again"
    )


def test_the_most_probable_label_is_what_predict_gives(estimator):
    X = pd.DataFrame(np.random.default_rng(1).normal(size=(200, 3)), columns=["a", "b", "c"])
    probabilities = estimator.predict_proba(X)
    labels = artifact.most_probable(estimator.classes_, probabilities)
    assert isinstance(labels, np.ndarray)
    assert labels.tolist() == estimator.predict(X).tolist()
    # any sequence in the classes' order (the predictor's wire values): a list back
    positions = artifact.most_probable(list(range(len(estimator.classes_))), probabilities)
    assert [estimator.classes_[i] for i in positions] == labels.tolist()
