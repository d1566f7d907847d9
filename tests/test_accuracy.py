"""The seed workflow at the seed's size gives what a bare in-process fit gives."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score

from fityard import Client
from ml.data import make_data

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def seed_size_files(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("seed-size"), rows=100_000)


def test_seed_workflow_accuracy_matches_a_bare_fit(local_stack, seed_size_files):
    train = pd.read_parquet(seed_size_files["train"])
    test = pd.read_parquet(seed_size_files["test"])
    bare = HistGradientBoostingClassifier().fit(train.drop(columns="y"), train["y"])
    bare_accuracy = accuracy_score(test["y"], bare.predict(test.drop(columns="y")))

    with Client(local_stack.address) as client:
        fit = client.fit(client.upload(seed_size_files["train"]))
        fit.wait(timeout=300)
        prediction = client.predict(fit, client.upload(seed_size_files["test"]))
        prediction.wait(timeout=300)
        predicted = client.download(prediction)

    assert list(predicted.columns) == ["y"]
    assert len(predicted) == len(test) == 25_000
    service_accuracy = accuracy_score(test["y"], predicted["y"])
    assert abs(service_accuracy - bare_accuracy) <= 0.01, (service_accuracy, bare_accuracy)
    assert service_accuracy > 0.8
