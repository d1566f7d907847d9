"""ml.fit / ml.predict on real Parquet files, the messages users get for bad
data and bad parameters, and the seed data generator."""

from __future__ import annotations

import decimal
import math
import pickle
import subprocess
import sys
from numbers import Integral
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils._param_validation import Interval, StrOptions

import ml
from fityard.v1 import jobs_pb2
from ml.data import make_data
from ml.messages import name_list
from ml.params import EARLY_STOPPING, NAMES, RANGES, to_sklearn_kwargs, validate_params

ROOT = Path(__file__).resolve().parents[1]
ROWS = 2000
FEATURES = [f"col_{i}" for i in range(50)]
QUICK = {"max_iter": 20}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"), rows=ROWS)


@pytest.fixture(scope="module")
def model_path(files, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    ml.fit(files["train"], path, params=QUICK)
    return path


def write(df: pd.DataFrame | pa.Table, path):
    """Write Parquet; an Arrow table for what pandas will not write (two
    columns of one name, lists as labels, bytes…)."""
    if isinstance(df, pa.Table):
        pq.write_table(df, path)
    else:
        df.to_parquet(path, index=False)
    return path


def fit_error(df: pd.DataFrame, tmp_path, params=None) -> str:
    """The message a user gets for fitting on `df`."""
    with pytest.raises(ml.DataError) as raised:
        ml.fit(write(df, tmp_path / "train.parquet"), tmp_path / "model.joblib", params=params)
    assert not (tmp_path / "model.joblib").exists()
    return str(raised.value)


def predict_error(df: pd.DataFrame, model_path, tmp_path) -> str:
    with pytest.raises(ml.DataError) as raised:
        ml.predict(
            model_path, write(df, tmp_path / "data.parquet"), tmp_path / "predictions.parquet"
        )
    assert not (tmp_path / "predictions.parquet").exists()
    return str(raised.value)


def small_train(**extra) -> pd.DataFrame:
    """A learnable two-feature problem, with extra columns as given."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    return pd.DataFrame({"a": a, "b": rng.normal(size=200), **extra, "y": (a > 0).astype(int)})


def arrow_train(names=None, **columns) -> pa.Table:
    """small_train as an Arrow table, columns replaced or added as given
    (Arrow values or anything pa.array takes), renamed to `names` if given."""
    data = {name: pa.array(column.to_numpy()) for name, column in small_train().items()}
    for name, values in columns.items():
        data[name] = values if isinstance(values, pa.Array) else pa.array(values)
    table = pa.table(data)
    return table.rename_columns(names) if names else table


# -- seed data ---------------------------------------------------------------


def test_make_data_writes_the_seed_files(files):
    assert {role: path.name for role, path in files.items()} == {
        "train": "train.parquet",
        "test": "test.parquet",
        "bad_train": "BAD_train.parquet",
        "bad_test": "BAD_test.parquet",
    }
    train, test = pd.read_parquet(files["train"]), pd.read_parquet(files["test"])
    assert list(train.columns) == list(test.columns) == [*FEATURES, "y"]
    assert (len(train), len(test)) == (ROWS * 3 // 4, ROWS // 4)
    assert set(train["y"]) == {0, 1}
    assert list(pd.read_parquet(files["bad_train"]).columns) == FEATURES
    bad_test = pd.read_parquet(files["bad_test"])
    assert list(bad_test.columns) == [*FEATURES[1:], "y"] and len(bad_test) == len(test)


def test_make_data_is_reproducible_and_creates_the_directory(tmp_path):
    first = make_data(tmp_path / "a" / "nested", rows=200, seed=3)
    again = make_data(tmp_path / "b", rows=200, seed=3)
    other = make_data(tmp_path / "c", rows=200, seed=4)
    pd.testing.assert_frame_equal(pd.read_parquet(first["train"]), pd.read_parquet(again["train"]))
    assert not pd.read_parquet(first["train"]).equals(pd.read_parquet(other["train"]))


# -- the good path -------------------------------------------------------------


def test_fit_then_predict_gives_one_column_y_for_every_row(files, tmp_path):
    fit_progress, predict_progress = [], []
    summary = ml.fit(
        files["train"],
        tmp_path / "model.joblib",
        params=QUICK,
        progress=lambda *a: fit_progress.append(a),
    )
    assert (summary.rows, summary.features, summary.classes) == (ROWS * 3 // 4, FEATURES, [0, 1])
    assert summary.validation is None  # 1,500 rows: no early stopping, nothing held out

    out = tmp_path / "predictions.parquet"
    result = ml.predict(
        tmp_path / "model.joblib",
        files["test"],
        out,
        progress=lambda *a: predict_progress.append(a),
    )
    predictions, truth = pd.read_parquet(out), pd.read_parquet(files["test"])
    assert result == ml.PredictSummary(rows=len(truth))
    assert list(predictions.columns) == ["y"] and len(predictions) == len(truth)
    assert (predictions["y"] == truth["y"]).mean() > 0.85  # chance is 0.5

    assert f"fitting on {ROWS * 3 // 4:,} rows × 50 features" in [
        message for _, message in fit_progress
    ]
    for reports in (fit_progress, predict_progress):
        fractions = [fraction for fraction, _ in reports]
        assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] < 1


def test_predict_ignores_extra_columns_and_column_order(files, model_path, tmp_path):
    test = pd.read_parquet(files["test"])
    expected = ml.predict(model_path, files["test"], tmp_path / "plain.parquet")
    shuffled = test[list(reversed(test.columns))].assign(note="free text", id=range(len(test)))
    ml.predict(
        model_path,
        write(shuffled, tmp_path / "shuffled.parquet"),
        tmp_path / "shuffled_out.parquet",
    )
    assert expected.rows == len(test)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "shuffled_out.parquet"),
        pd.read_parquet(tmp_path / "plain.parquet"),
    )


def test_predict_without_y_column_works(files, model_path, tmp_path):
    unlabelled = pd.read_parquet(files["test"]).drop(columns=["y"])
    ml.predict(model_path, write(unlabelled, tmp_path / "u.parquet"), tmp_path / "out.parquet")
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == len(unlabelled)


def test_string_labels_come_back_as_strings(tmp_path):
    df = small_train()
    df["y"] = df["y"].map({0: "no", 1: "yes"})
    summary = ml.fit(write(df, tmp_path / "t.parquet"), tmp_path / "m.joblib")
    assert summary.classes == ["no", "yes"]
    ml.predict(tmp_path / "m.joblib", tmp_path / "t.parquet", tmp_path / "p.parquet")
    assert set(pd.read_parquet(tmp_path / "p.parquet")["y"]) == {"no", "yes"}


def test_decimal_boolean_and_category_features_are_usable(tmp_path):
    df = small_train(
        price=[decimal.Decimal("1.25")] * 100 + [None] * 100,
        flag=[True, False] * 100,
        colour=pd.Categorical(["red", "blue"] * 100),
    )
    assert ml.fit(write(df, tmp_path / "t.parquet"), tmp_path / "m.joblib").rows == 200


def test_a_category_feature_may_arrive_as_plain_text_when_predicting(tmp_path):
    """Files written by other tools often lose the dictionary (category) encoding."""
    train = small_train(colour=pd.Categorical(["red", "blue"] * 100))
    ml.fit(write(train, tmp_path / "t.parquet"), tmp_path / "m.joblib")
    as_text = train.drop(columns=["y"]).assign(colour=["red", "blue", "green", None] * 50)
    summary = ml.predict(
        tmp_path / "m.joblib", write(as_text, tmp_path / "p.parquet"), tmp_path / "out.parquet"
    )
    assert summary.rows == len(pd.read_parquet(tmp_path / "out.parquet")) == 200


def test_params_reach_the_estimator(files, tmp_path):
    params = to_sklearn_kwargs(
        {"max_iter": 3, "early_stopping": "false", "max_bins": 16, "random_state": 7}
    )
    ml.fit(files["train"], tmp_path / "model.joblib", params=params)
    model = joblib.load(tmp_path / "model.joblib")
    assert isinstance(model, HistGradientBoostingClassifier)
    assert model.n_iter_ == 3
    assert model.get_params()["early_stopping"] is False
    assert model.get_params()["max_bins"] == 16 and model.get_params()["random_state"] == 7


# -- what a user is told about bad data -----------------------------------------


def test_training_file_without_y_lists_the_columns_found(files, tmp_path):
    with pytest.raises(ml.DataError) as raised:
        ml.fit(files["bad_train"], tmp_path / "model.joblib")
    assert str(raised.value) == (
        f"training data has no column 'y'; columns found: {', '.join(FEATURES[:20])}, … and 30 more. "
        "Add the target column 'y' (the label to learn) and upload again."
    )


def test_a_long_column_list_is_cut_short(tmp_path):
    message = fit_error(pd.DataFrame({f"f{i}": [1.0] for i in range(80)}), tmp_path)
    assert "f0, f1," in message and "f19, … and 60 more." in message and "f20" not in message


def test_a_capitalised_target_gets_a_rename_hint(tmp_path):
    message = fit_error(small_train().rename(columns={"y": "Y"}), tmp_path)
    assert "no column 'y'" in message and "rename it to 'y'" in message


@pytest.mark.parametrize(
    "df, expected",
    [
        pytest.param(small_train().iloc[:0], "training data has 0 rows", id="zero-rows"),
        pytest.param(
            small_train()[["y"]], "training data has no feature columns", id="no-features"
        ),
        pytest.param(
            small_train().assign(y=1),
            "training data needs at least two classes in 'y'; found only 1 (every row has y = 1)",
            id="single-class",
        ),
        pytest.param(
            small_train().assign(y=[0.0, None] * 100),
            "'y' is missing in 100 of 200 rows",
            id="missing-labels",
        ),
        pytest.param(
            small_train().assign(y=np.linspace(0, 1, 200)),
            "'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds continuous values, e.g. 0.0, ",
            id="continuous-target",
        ),
        pytest.param(
            small_train(city=["Oslo", "Rome"] * 100, day=pd.date_range("2024-01-01", periods=200)),
            "training data has 2 feature columns HistGradientBoostingClassifier cannot use: "
            "city (str), day (datetime64[us]). Encode them as numbers",
            id="text-and-dates",
        ),
        pytest.param(
            small_train(empty=np.nan),
            "training data has 1 feature column with no values (missing in every row): empty.",
            id="all-missing-feature",
        ),
        pytest.param(
            small_train(code=pd.Categorical([f"c{i}" for i in range(200)])),
            "categorical feature column 'code' has 200 distinct values; "
            "HistGradientBoostingClassifier takes at most 100 (max_bins)",
            id="too-many-categories",
        ),
    ],
)
def test_bad_training_data_is_explained(df, expected, tmp_path):
    assert expected in fit_error(df, tmp_path, params={"max_bins": 100})


def test_prediction_file_without_a_feature_names_it(files, model_path, tmp_path):
    with pytest.raises(ml.DataError) as raised:
        ml.predict(model_path, files["bad_test"], tmp_path / "predictions.parquet")
    assert str(raised.value) == (
        "prediction data is missing 1 column the model was trained on: col_0. Upload a file with every "
        "training feature column (col_0, col_1, col_2, col_3, col_4, … and 45 more) — extra columns are ignored."
    )
    assert not (tmp_path / "predictions.parquet").exists()


def test_every_missing_feature_is_listed(files, model_path, tmp_path):
    test = pd.read_parquet(files["test"])
    message = predict_error(test.drop(columns=["col_3", "col_17", "col_42"]), model_path, tmp_path)
    assert message.startswith(
        "prediction data is missing 3 columns the model was trained on: col_3, col_17, col_42."
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(lambda t: t.iloc[:0], "prediction data has 0 rows", id="zero-rows"),
        pytest.param(
            lambda t: t.assign(col_7="n/a"),
            "prediction data has 1 feature column holding other values than the model was trained on: "
            "col_7 (str here, numbers in training). Store it as in the training data",
            id="text-in-a-number-column",
        ),
    ],
)
def test_bad_prediction_data_is_explained(change, expected, files, model_path, tmp_path):
    assert expected in predict_error(change(pd.read_parquet(files["test"])), model_path, tmp_path)


@pytest.mark.parametrize("kind", ["fit", "predict"])
def test_a_file_that_is_not_parquet_is_a_data_error(kind, model_path, tmp_path):
    path = tmp_path / "upload.parquet"
    path.write_text("col_0,y\n1.0,1\n")
    with pytest.raises(ml.DataError) as raised:
        if kind == "fit":
            ml.fit(path, tmp_path / "model.joblib")
        else:
            ml.predict(model_path, path, tmp_path / "predictions.parquet")
    what = "training" if kind == "fit" else "prediction"
    assert str(raised.value).startswith(f"could not read {what} data as Parquet: ")
    assert str(tmp_path) not in str(
        raised.value
    )  # a server-side temp path means nothing to the user


# -- messages stay small enough to travel (NATS, gRPC) -----------------------------


def test_name_list_shows_twenty_names_each_cut_short():
    names = [f"c{i}" for i in range(100)]
    assert name_list(names) == ", ".join(names[:20]) + ", … and 80 more"
    assert name_list(names[:20]) == ", ".join(names[:20])
    assert name_list(iter(names), limit=3) == "c0, c1, c2, … and 97 more"
    assert name_list(["x" * 1000]) == "x" * 63 + "…"
    assert name_list(range(12_345), limit=1) == "0, … and 12,344 more"
    assert name_list([]) == "(none)"


def test_name_list_quotes_names_that_would_be_invisible_or_ambiguous():
    assert (
        name_list(["y ", "", "a, b", "tab\there", "plain"])
        == "'y ', '', 'a, b', 'tab\\there', plain"
    )
    assert name_list([" " + "s" * 100]) == repr(" " + "s" * 62 + "…")
    assert name_list(["price"], describe=lambda name: "str") == "price (str)"
    assert (
        name_list(["p" * 100], describe=lambda name: "str") == "p" * 63 + "… (str)"
    )  # never cut away


def test_bounded_keeps_the_start_and_says_how_much_was_cut():
    assert ml.bounded("short") == "short"
    assert ml.bounded("x" * 4096) == "x" * 4096
    text = "".join(f"line {i}\n" for i in range(100_000))
    cut = ml.bounded(text)
    assert len(cut.encode()) <= 4096 and cut.startswith("line 0\nline 1\n")
    kept = cut.index("… [")
    assert cut[kept:] == f"… [{len(text) - kept:,} more characters cut]" and text.startswith(
        cut[:kept]
    )
    assert len(cut.encode()) > 4000  # the budget is used, not wasted
    assert len(ml.bounded(text, 100).encode()) <= 100


def test_bounded_counts_utf8_bytes_and_keeps_whole_characters():
    cut = ml.bounded("é" * 10_000, 1000)  # 2 bytes each
    assert len(cut.encode()) <= 1000 and cut.startswith("é" * 450) and "\ufffd" not in cut
    euros = ml.bounded("€" * 400, 1000)  # 400 characters but 1,200 bytes: cut
    assert len(euros.encode()) <= 1000
    assert euros.endswith(f"€… [{400 - euros.index('… ['):,} more characters cut]")


def test_bounded_can_keep_the_end_too():
    """For a traceback the last line (the error) matters most."""
    text = "Traceback (most recent call last):\n" + "x" * 100_000 + "\nValueError: the real reason"
    cut = ml.bounded(text, 500, tail=100)
    assert cut.startswith("Traceback (most recent call last):\n") and cut.endswith(
        "\nValueError: the real reason"
    )
    assert "characters cut] …" in cut and len(cut.encode()) <= 500


def test_a_data_error_caps_its_own_message_keeping_what_and_how_to_fix():
    error = ml.DataError("column " + "x" * 1_000_000 + " is bad. Rename it and upload again.")
    message = str(error)
    assert ml.DataError.LIMIT == 4096 and len(message.encode()) <= 4096
    assert message.startswith("column xxx") and message.endswith(
        " is bad. Rename it and upload again."
    )
    assert str(pickle.loads(pickle.dumps(error))) == message  # crosses the worker's pipe unchanged
    assert str(ml.DataError("short")) == "short"


def test_a_wide_file_without_y_gets_a_small_message(tmp_path):
    """No y, 3,000 columns, the first named with a million characters: the
    message (once larger than a NATS message) is a few hundred bytes."""
    names = ["n" * 1_000_000, *(f"feature_{i}" for i in range(1, 3000))]
    pq.write_table(pa.table([pa.array([1.0])] * len(names), names=names), tmp_path / "wide.parquet")
    with pytest.raises(ml.DataError) as raised:
        ml.fit(tmp_path / "wide.parquet", tmp_path / "model.joblib")
    message = str(raised.value)
    assert len(message.encode()) < 1000
    assert message.startswith(
        "training data has no column 'y'; columns found: " + "n" * 63 + "…, feature_1, "
    )
    assert message.endswith(
        "feature_19, … and 2,980 more. Add the target column 'y' (the label to learn) and upload again."
    )


LONG = "a_feature_name_of_more_than_sixty_four_characters_which_is_cut_short_in_messages"


@pytest.mark.parametrize(
    "make, expected",
    [
        pytest.param(
            lambda: small_train(**{f"{LONG}_{i}": "text" for i in range(50)}),
            "training data has 50 feature columns HistGradientBoostingClassifier cannot use: "
            f"{LONG[:63]}… (str), ",
            id="unusable",
        ),
        pytest.param(
            lambda: small_train(**{f"{LONG}_{i}": np.nan for i in range(50)}),
            f"training data has 50 feature columns with no values (missing in every row): {LONG[:63]}…, ",
            id="empty",
        ),
        pytest.param(
            lambda: pa.table(
                [pa.array([0, 1])] * 101, names=[f"{LONG}_{i}" for i in range(50)] * 2 + ["y"]
            ),
            f"training data has more than one column named {LONG[:63]}… (2 times), {LONG[:63]}… (2 times), ",
            id="duplicates",
        ),
    ],
)
def test_every_list_in_a_training_message_is_abbreviated(make, expected, tmp_path):
    message = fit_error(make(), tmp_path)
    assert message.startswith(expected) and LONG not in message and len(message.encode()) < 2000
    assert "… and 30 more" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(
            lambda t: t.drop(columns=FEATURES),
            "prediction data is missing 50 columns the model was trained on: col_0, col_1, ",
            id="missing",
        ),
        pytest.param(
            lambda t: t.assign(**{name: "n/a" for name in FEATURES}),
            "prediction data has 50 feature columns holding other values than the model was trained on: "
            "col_0 (str here, numbers in training), ",
            id="mismatched",
        ),
    ],
)
def test_every_list_in_a_prediction_message_is_abbreviated(
    change, expected, files, model_path, tmp_path
):
    message = predict_error(change(pd.read_parquet(files["test"])), model_path, tmp_path)
    assert message.startswith(expected) and "col_19" in message and "col_20," not in message
    assert ", … and 30 more" in message


# -- too many classes: refused before any work ------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(np.arange(1500), id="integers"),
        pytest.param([f"customer-{i}" for i in range(1500)], id="strings"),
        pytest.param(np.arange(1500) * 1.0, id="whole-floats"),
    ],
)
def test_too_many_classes_is_refused_before_fitting(labels, tmp_path, monkeypatch):
    df = pd.DataFrame({"a": np.arange(1500) % 7, "y": labels})
    reports = []
    # Not even sklearn's type_of_target (it sorts the labels: seconds for millions of them).
    monkeypatch.setattr(
        "ml.checks.type_of_target", lambda y: pytest.fail("type_of_target was called")
    )
    with pytest.raises(ml.DataError) as raised:
        ml.fit(
            write(df, tmp_path / "t.parquet"),
            tmp_path / "m.joblib",
            progress=lambda _, m: reports.append(m),
        )
    message = str(raised.value)
    assert message.startswith("column 'y' has 1,500 distinct values (e.g. ")
    assert (
        "; a classifier supports at most 1,000 classes (FITYARD_MAX_CLASSES): is y a continuous quantity or an id? "
        in message
    )
    assert reports == ["reading training data"]  # no fitting started


def test_max_classes_is_set_by_the_caller(tmp_path):
    path = write(small_train().assign(y=np.arange(200) % 20), tmp_path / "t.parquet")
    with pytest.raises(
        ml.DataError, match="^column 'y' has 20 distinct values .* at most 10 classes"
    ):
        ml.fit(path, tmp_path / "m.joblib", params=QUICK, max_classes=10)
    assert ml.fit(path, tmp_path / "m.joblib", params=QUICK, max_classes=20).classes == list(
        range(20)
    )
    assert ml.fit(path, tmp_path / "m.joblib", params=QUICK, max_classes=None).classes == list(
        range(20)
    )


def test_a_continuous_y_with_many_values_is_still_called_continuous(tmp_path):
    """The continuous check comes first: it is the better explanation."""
    message = fit_error(
        pd.DataFrame({"a": np.arange(1500.0), "y": np.linspace(0, 1, 1500)}), tmp_path
    )
    assert message.startswith(
        "'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds continuous values"
    )


# -- what users can send: a DataError naming the column, or it works ---------------


@pytest.mark.parametrize(
    "data, expected",
    [
        pytest.param(
            arrow_train(names=["a", "a", "y"]),
            "training data has more than one column named a (2 times). Each column needs its own name: "
            "rename or drop the duplicates and upload again.",
            id="duplicate-column-names",
        ),
        pytest.param(
            arrow_train(names=["a", "y", "y"]),
            "training data has more than one column named y (2 times).",
            id="duplicate-y",
        ),
        pytest.param(
            arrow_train(tags=[[1.0, 2.0]] * 200, point=[{"x": 1, "y": 2}] * 200),
            "training data has 2 feature columns HistGradientBoostingClassifier cannot use: "
            "tags (lists), point (structs). Encode them as numbers",
            id="lists-and-structs",
        ),
        pytest.param(
            small_train(
                tags=pd.Series([[1], None] * 100, dtype=pd.ArrowDtype(pa.list_(pa.int64())))
            ),
            "training data has 1 feature column HistGradientBoostingClassifier cannot use: tags (lists).",
            id="arrow-list-written-by-pandas",  # its pandas metadata cannot be read back by pandas
        ),
        pytest.param(
            arrow_train(
                day=pa.array([19000] * 200, pa.date32()), at=pa.array([60] * 200, pa.time32("s"))
            ),
            "cannot use: day (dates), at (times of day).",
            id="dates-and-times",
        ),
        pytest.param(
            arrow_train(y=[[0]] * 100 + [[1]] * 100),
            "but holds lists, e.g. [0], [0], [0].",
            id="list-y",
        ),
        pytest.param(
            arrow_train(y=[{"c": 0}, {"c": 1}] * 100), "but holds structs, e.g. ", id="struct-y"
        ),
        pytest.param(
            arrow_train(y=[b"no", b"yes"] * 100),
            "'y' must hold class labels (such as 0/1 or 'cat'/'dog') but holds bytes, e.g. b'no', b'yes', b'no'. "
            "Put one label (a number or a text) in each row of 'y'",
            id="bytes-y",
        ),
        pytest.param(
            small_train().assign(y=np.nan), "'y' is missing in 200 of 200 rows", id="all-missing-y"
        ),
        pytest.param(
            arrow_train(y=pa.nulls(200)), "'y' is missing in 200 of 200 rows", id="all-null-y"
        ),
        pytest.param(
            small_train().assign(y=[1.0, np.inf, 0.0, -np.inf] * 50),
            "'y' is infinite (inf or -inf) in 100 of 200 rows; every training row needs a class label.",
            id="infinite-y",
        ),
        pytest.param(
            small_train().rename(columns={"y": "y "}),
            "training data has no column 'y' (found 'y ': rename it to 'y'; names must match exactly, in case "
            "and spaces); columns found: a, b, 'y '.",
            id="y-with-a-space",
        ),
        pytest.param(
            small_train().assign(y=[0, 1, 2] + [0, 1] * 98 + [0]),
            "early stopping holds out 20 of 200 rows for validation, stratified by class, so every class in 'y' "
            "needs at least 2 rows; 1 class has only one: 2. Add rows of that class or drop it, or fit with the "
            'parameter early_stopping set to "false", and upload again.',
            id="early-stopping-single-row-class",
        ),
        pytest.param(
            small_train().assign(y=np.arange(200) % 40),
            "early stopping holds out 20 of 200 rows for validation, stratified by class, which is too few rows "
            "for the 40 classes in 'y'.",
            id="early-stopping-too-many-classes",
        ),
    ],
)
def test_user_data_errors_are_data_errors(data, expected, tmp_path):
    assert expected in fit_error(data, tmp_path, params={"early_stopping": True, "max_iter": 5})


def test_early_stopping_is_on_by_default_above_10000_rows(tmp_path):
    df = pd.DataFrame({"a": np.arange(10_001) % 9, "y": [0, 1] * 5000 + [2]})
    assert "1 class has only one: 2." in fit_error(df, tmp_path)
    params = to_sklearn_kwargs({"early_stopping": "false", "max_iter": 2})
    assert ml.fit(
        write(df, tmp_path / "t.parquet"), tmp_path / "m.joblib", params=params
    ).classes == [0, 1, 2]


def test_a_y_written_as_the_index_gets_a_hint(tmp_path):
    small_train().set_index("y").to_parquet(
        tmp_path / "t.parquet"
    )  # index=True by default for a named index
    with pytest.raises(ml.DataError) as raised:
        ml.fit(tmp_path / "t.parquet", tmp_path / "m.joblib")
    assert str(raised.value).startswith(
        "training data has no column 'y' (y is the file's index: write the file with index=False after "
        "reset_index()); columns found: a, b."
    )


@pytest.mark.parametrize(
    "labels, classes, dtype",
    [
        pytest.param(
            pd.array([False, True] * 100, dtype=bool), [False, True], "bool", id="boolean"
        ),
        pytest.param(pd.array([0, 1] * 100, dtype="Int64"), [0, 1], "int64", id="nullable-integer"),
        pytest.param(
            pd.array([0, 1] * 100, dtype="int64[pyarrow]"), [0, 1], "int64", id="arrow-integer"
        ),
        pytest.param(
            [decimal.Decimal("0"), decimal.Decimal("1")] * 100, [0, 1], "int64", id="decimal"
        ),
        pytest.param(pd.Categorical(["no", "yes"] * 100), ["no", "yes"], "object", id="category"),
        pytest.param(
            pd.array(["no", "yes"] * 100, dtype="string"), ["no", "yes"], "object", id="string"
        ),
    ],
)
def test_labels_of_many_types_work_and_come_back_as_written(labels, classes, dtype, tmp_path):
    df = small_train().assign(y=labels)
    assert (
        ml.fit(write(df, tmp_path / "t.parquet"), tmp_path / "m.joblib", params=QUICK).classes
        == classes
    )
    ml.predict(tmp_path / "m.joblib", tmp_path / "t.parquet", tmp_path / "p.parquet")
    predictions = pd.read_parquet(tmp_path / "p.parquet")["y"]
    assert set(predictions) == set(classes) and (predictions.dtype == dtype or dtype == "object")


def test_a_dictionary_encoded_y_works(tmp_path):
    table = arrow_train(y=pa.array(["no", "yes"] * 100).dictionary_encode())
    assert ml.fit(
        write(table, tmp_path / "t.parquet"), tmp_path / "m.joblib", params=QUICK
    ).classes == ["no", "yes"]


def test_a_feature_named_y_with_a_space_is_just_a_feature(tmp_path):
    summary = ml.fit(
        write(small_train(**{"y ": 1.0}), tmp_path / "t.parquet"),
        tmp_path / "m.joblib",
        params=QUICK,
    )
    assert summary.features == ["a", "b", "y "]


def test_features_in_nullable_and_arrow_types_work(tmp_path):
    """pandas writes these types into the file's metadata and reads them
    back; scikit-learn cannot convert their missing values itself."""
    train = small_train(
        text=pd.array(["1.5", None] * 100, dtype="string"),
        count=pd.array([1, None] * 100, dtype="Int64"),
        flag=pd.array([True, None] * 100, dtype="boolean"),
        ratio=pd.array([0.5, None] * 100, dtype="float64[pyarrow]"),
        price=pd.array(
            [decimal.Decimal("1.25"), None] * 100, dtype=pd.ArrowDtype(pa.decimal128(10, 2))
        ),
    )
    summary = ml.fit(write(train, tmp_path / "t.parquet"), tmp_path / "m.joblib", params=QUICK)
    assert summary.features == ["a", "b", "text", "count", "flag", "ratio", "price"]
    assert (
        ml.predict(tmp_path / "m.joblib", tmp_path / "t.parquet", tmp_path / "p.parquet").rows
        == 200
    )


@pytest.fixture(scope="module")
def category_model(tmp_path_factory):
    """A model with a numeric feature `a` and a categorical (text) one, `colour`."""
    path = tmp_path_factory.mktemp("category") / "model.joblib"
    train = small_train(colour=pd.Categorical(["red", "blue"] * 100))
    ml.fit(write(train, path.with_suffix(".parquet")), path, params=QUICK)
    return path


@pytest.mark.parametrize(
    "data, expected",
    [
        pytest.param(
            small_train(colour=[1, 2] * 100),
            "prediction data has 1 feature column holding other values than the model was trained on: "
            "colour (int64 here, text in training). Store it as in the training data (numbers for numbers, "
            "text for categories) and upload again.",
            id="numbers-for-categories",
        ),
        pytest.param(
            arrow_train(colour=[b"red", b"blue"] * 100),
            "colour (bytes here, text in training)",
            id="bytes-for-categories",  # every value would be an unknown category, silently
        ),
        pytest.param(
            arrow_train(colour=[["red"]] * 200),
            "colour (lists here, text in training)",
            id="lists-for-categories",
        ),
        pytest.param(
            small_train(colour="red").assign(a=pd.Categorical(["low", "high"] * 100)),
            "a (category of text here, numbers in training)",
            id="categories-for-numbers",
        ),
        pytest.param(
            arrow_train(colour=["red"] * 200, a=[[1.0]] * 200),
            "a (lists here, numbers in training)",
            id="lists-for-numbers",
        ),
        pytest.param(
            arrow_train(names=["a", "b", "colour", "colour"], colour=["red"] * 200),
            "prediction data has more than one column named colour (2 times).",
            id="duplicate-column-names",
        ),
    ],
)
def test_prediction_data_of_another_type_than_training_is_a_data_error(
    data, expected, category_model, tmp_path
):
    assert expected in predict_error(data, category_model, tmp_path)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            small_train(colour=["red", "green"] * 100)[["y", "colour", "b", "a"]],
            id="reordered-and-y",
        ),
        pytest.param(
            small_train(colour=pd.Categorical(["green", None] * 100)), id="other-categories"
        ),
        pytest.param(arrow_train(colour=pa.nulls(200), b=pa.nulls(200)), id="all-missing"),
        pytest.param(
            small_train(colour="red").assign(a=pd.array(["1.5", None] * 100, dtype="string")),
            id="numbers-as-text",
        ),
        pytest.param(
            small_train(colour="red").assign(a=[True, False] * 100), id="booleans-for-numbers"
        ),
        pytest.param(
            small_train(colour="red").assign(a=pd.Categorical([1.5, 2.5] * 100)),
            id="number-categories",
        ),
    ],
)
def test_prediction_data_that_should_work_works(data, category_model, tmp_path):
    out = tmp_path / "predictions.parquet"
    assert ml.predict(category_model, write(data, tmp_path / "data.parquet"), out).rows == 200
    assert list(pd.read_parquet(out).columns) == ["y"]


def test_a_feature_written_as_the_index_gets_a_hint(model_path, files, tmp_path):
    pd.read_parquet(files["test"]).set_index("col_0").to_parquet(tmp_path / "data.parquet")
    with pytest.raises(ml.DataError) as raised:
        ml.predict(model_path, tmp_path / "data.parquet", tmp_path / "predictions.parquet")
    assert str(raised.value).startswith(
        "prediction data is missing 1 column the model was trained on: col_0 (col_0 is the file's index: "
        "write the file with index=False after reset_index())."
    )


# -- parameters -------------------------------------------------------------------


def test_good_params_pass():
    good = {
        "learning_rate": 0.05,
        "max_iter": 1,
        "max_leaf_nodes": 2,
        "max_depth": 1,
        "min_samples_leaf": 1,
        "l2_regularization": 0.0,
        "max_bins": 255,
        "random_state": 2**32 - 1,
        "early_stopping": "auto",
        "validation_fraction": 0.999,
    }
    assert validate_params(good) == [] and validate_params({}) == []
    assert to_sklearn_kwargs(good) == good


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"learning_rate": 0.0}, "params.learning_rate must be greater than 0 (got 0.0)"),
        ({"learning_rate": math.nan}, "params.learning_rate must be a finite number (got nan)"),
        ({"max_iter": 0}, "params.max_iter must be at least 1 (got 0)"),
        ({"max_iter": 2.5}, "params.max_iter must be an integer (got 2.5)"),
        ({"max_iter": True}, "params.max_iter must be an integer (got True)"),
        ({"max_leaf_nodes": 1}, "params.max_leaf_nodes must be at least 2 (got 1)"),
        ({"max_depth": 0}, "params.max_depth must be at least 1 (got 0)"),
        ({"min_samples_leaf": 0}, "params.min_samples_leaf must be at least 1 (got 0)"),
        ({"l2_regularization": -0.5}, "params.l2_regularization must be at least 0 (got -0.5)"),
        ({"l2_regularization": "1"}, "params.l2_regularization must be a number (got '1')"),
        ({"max_bins": 300}, "params.max_bins must be between 2 and 255 (got 300)"),
        ({"max_bins": 1}, "params.max_bins must be between 2 and 255 (got 1)"),
        ({"random_state": -1}, "params.random_state must be between 0 and 4294967295 (got -1)"),
        (
            {"random_state": 2**32},
            "params.random_state must be between 0 and 4294967295 (got 4294967296)",
        ),
        (
            {"validation_fraction": 1.5},
            "params.validation_fraction must be between 0 and 1 (exclusive) (got 1.5)",
        ),
        (
            {"validation_fraction": 0.0},
            "params.validation_fraction must be between 0 and 1 (exclusive) (got 0.0)",
        ),
        (
            {"validation_fraction": 1},
            "params.validation_fraction must be between 0 and 1 (exclusive) (got 1)",
        ),
        (
            {"validation_fraction": 100},  # sklearn would take a row count; ours is a fraction
            "params.validation_fraction must be between 0 and 1 (exclusive) (got 100)",
        ),
        (
            {"validation_fraction": "0.2"},
            "params.validation_fraction must be a number (got '0.2')",
        ),
        (
            {"validation_fraction": math.inf},
            "params.validation_fraction must be a finite number (got inf)",
        ),
        (
            {"early_stopping": "yes"},
            'params.early_stopping must be "auto", "true" or "false" (got \'yes\')',
        ),
        (
            {"n_estimators": 10},
            f"params.n_estimators is not a fit parameter; known: {', '.join(NAMES)}",
        ),
    ],
)
def test_each_bad_param_is_named(params, expected):
    assert validate_params(params) == [expected]
    with pytest.raises(ValueError, match="^params\\."):
        to_sklearn_kwargs(params)


def test_every_problem_is_reported_at_once():
    problems = validate_params({"max_iter": 0, "max_bins": 300, "learning_rate": 0.1})
    assert [p.split()[0] for p in problems] == ["params.max_iter", "params.max_bins"]


@pytest.mark.parametrize(
    "given, expected",
    [("auto", "auto"), ("true", True), ("False", False), (" TRUE ", True), (False, False)],
)
def test_early_stopping_is_converted_for_sklearn(given, expected):
    assert to_sklearn_kwargs({"early_stopping": given}) == {"early_stopping": expected}


def test_unset_params_keep_sklearns_defaults():
    assert (
        validate_params({"max_depth": None}) == [] and to_sklearn_kwargs({"max_depth": None}) == {}
    )


def test_every_fit_request_field_is_validated():
    """A field added to FitParams but not here would be refused as unknown."""
    assert set(jobs_pb2.FitParams.DESCRIPTOR.fields_by_name) == set(NAMES)


def sklearn_interval(name: str, kind: type) -> Interval:
    """HistGradientBoostingClassifier's one interval constraint on `name`
    for integers (`kind` Integral) or for other numbers (Real)."""
    [interval] = [
        c
        for c in HistGradientBoostingClassifier._parameter_constraints[name]
        if isinstance(c, Interval) and issubclass(c.type, Integral) == (kind is Integral)
    ]
    return interval


@pytest.mark.parametrize("name", [n for n in RANGES if n != "random_state"])
def test_ranges_agree_with_sklearn(name):
    """Our ranges are copies of HistGradientBoostingClassifier's constraints
    (validation_fraction: of its fraction interval, see the next test)."""
    allowed = RANGES[name]
    interval = sklearn_interval(name, allowed.kind)
    assert (interval.left, interval.right) == (allowed.low, allowed.high)
    assert (interval.closed in ("left", "both")) == (not allowed.low_open)
    if allowed.high is not None:
        assert (interval.closed in ("right", "both")) == (not allowed.high_open)


def test_validation_fraction_is_only_a_fraction_on_purpose():
    """sklearn also takes a row count (an int) or None (early stopping
    scored on the training rows). Ours is only a fraction: ml.fit makes the
    split itself and reports it as train_test_split(test_size=fraction); and
    unset (None) means our default (0.1 with early stopping, otherwise no
    rows held out), not sklearn's None."""
    constraints = HistGradientBoostingClassifier._parameter_constraints["validation_fraction"]
    assert None in constraints
    count_interval = sklearn_interval("validation_fraction", Integral)
    assert (count_interval.left, count_interval.closed) == (1, "left")
    assert validate_params({"validation_fraction": 2}) != []
    assert validate_params({"validation_fraction": None}) == []  # unset, not sklearn's None
    assert to_sklearn_kwargs({"validation_fraction": None}) == {}


def test_random_state_range_agrees_with_numpy_seeding():
    """sklearn only checks random_state's type up front; numpy's seeding decides the range."""
    assert "random_state" in HistGradientBoostingClassifier._parameter_constraints["random_state"]
    for seed in (RANGES["random_state"].low, RANGES["random_state"].high):
        np.random.RandomState(seed)
    for seed in (RANGES["random_state"].low - 1, RANGES["random_state"].high + 1):
        with pytest.raises(ValueError):
            np.random.RandomState(seed)


def test_early_stopping_options_agree_with_sklearn():
    constraints = HistGradientBoostingClassifier._parameter_constraints["early_stopping"]
    [options] = [c for c in constraints if isinstance(c, StrOptions)]
    assert options.options == {v for v in EARLY_STOPPING.values() if isinstance(v, str)}
    assert "boolean" in constraints
    for value in EARLY_STOPPING.values():
        HistGradientBoostingClassifier(early_stopping=value)._validate_params()


def test_params_module_stays_light():
    """The gateway and scheduler import ml.params; it must not drag in pandas or sklearn."""
    code = "import sys, ml.params; print(sorted({'pandas', 'sklearn', 'numpy'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


# -- progress by boosting round ----------------------------------------------------


def test_a_fit_reports_its_boosting_rounds_and_fits_exactly_what_a_plain_fit_does(
    tmp_path, monkeypatch
):
    """Progress comes from scikit-learn's verbose output (no callback
    exists); it must not change the model: same predictions and
    probabilities as HistGradientBoostingClassifier fitted plainly."""
    import ml.model

    monkeypatch.setattr(ml.model, "ROUNDS_REPORT_SECONDS", 0.0)  # every round
    files = make_data(tmp_path, rows=3000, seed=3)
    reports: list[tuple[float, str]] = []
    params = {"max_iter": 30, "learning_rate": 0.2, "random_state": 0}
    ml.fit(files["train"], tmp_path / "m.joblib", params, lambda f, m: reports.append((f, m)))
    rounds = [m for _, m in reports if m.startswith("boosting round")]
    assert rounds[0] == "boosting round 1 of 30" and rounds[-1] == "boosting round 30 of 30"
    assert len(rounds) == 30
    fractions = [f for f, m in reports if m.startswith("boosting round")]
    assert fractions == sorted(fractions) and 0.15 < fractions[0] < fractions[-1] <= 0.95

    train = pd.read_parquet(files["train"])
    plain = HistGradientBoostingClassifier(**params).fit(train.drop(columns=["y"]), train["y"])
    ours = joblib.load(tmp_path / "m.joblib")
    test = pd.read_parquet(files["test"]).drop(columns=["y"], errors="ignore")
    np.testing.assert_array_equal(ours.predict(test), plain.predict(test))
    np.testing.assert_array_equal(ours.predict_proba(test), plain.predict_proba(test))
    assert ours.get_params() == plain.get_params()  # verbose back to 0 in the saved model


def test_round_reports_are_throttled_but_the_last_is_always_said(tmp_path):
    files = make_data(tmp_path, rows=2000, seed=4)
    reports: list[str] = []
    ml.fit(files["train"], tmp_path / "m.joblib", {"max_iter": 50}, lambda f, m: reports.append(m))
    rounds = [m for m in reports if m.startswith("boosting round")]
    assert 1 <= len(rounds) < 50  # a fast fit: a few reports, not one per round
    assert rounds[-1] == "boosting round 50 of 50"  # 2,000 rows: no early stopping
