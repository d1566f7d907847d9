"""Files that must not hurt whoever handles them: a download never writes
outside the directory asked for, whatever name the uploader gave; a model
file changed in the store is refused before anything unpickles it."""

from __future__ import annotations

import joblib
import pandas as pd
import pytest

from fityard import Client, JobFailed
from fityard._transfers import safe_name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("train.parquet", "train.parquet"),
        ("../../x.parquet", "x.parquet"),
        ("..\\..\\evil.parquet", "evil.parquet"),
        ("/etc/passwd", "passwd"),
        (".bashrc", "bashrc"),
        ("..", "download"),
        ("", "download"),
        ("a\x00b\nc.parquet", "a_b_c.parquet"),
    ],
)
def test_a_server_file_name_is_reduced_to_a_safe_base_name(name, safe):
    assert safe_name(name) == safe


@pytest.mark.stack
def test_a_dataset_named_to_climb_out_is_downloaded_inside_the_directory(local_stack, tmp_path):
    target = tmp_path / "a" / "b" / "downloads"
    target.mkdir(parents=True)
    frame = pd.DataFrame({"col_0": [0.25, 1.0, 2.0], "y": [0, 1, 0]})
    with Client(local_stack.address) as client:
        dataset = client.upload(frame, name="../../x.parquet")
        assert dataset.name == "../../x.parquet"  # kept as given: it is only a label
        path = client.download_dataset(dataset, target)
    assert path == target / "x.parquet"
    assert pd.read_parquet(path).equals(frame)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["x.parquet"]


class _Planted:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.stack
def test_a_model_changed_in_the_store_is_refused_unloaded(local_stack, seed_files, tmp_path):
    marker = tmp_path / "unpickled"
    with Client(local_stack.address) as client:
        fit = client.fit(client.upload(seed_files["train"]), max_iter=5).wait(timeout=120)
        (model,) = (local_stack.data_dir / "objects").rglob(f"models/{fit.id}/*.joblib")
        joblib.dump(_Planted(str(marker)), model)
        predict = client.predict(fit, client.upload(seed_files["test"]))
        with pytest.raises(JobFailed) as failed:
            predict.wait(timeout=120)
    assert not marker.exists()  # nothing was unpickled
    assert f"the model of jobs/{fit.id} does not match the checksum" in str(failed.value)
    assert "Train the model again" in str(failed.value)
