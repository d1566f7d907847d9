"""What a fit reports (FitSummary, the held-out split and its score), class
probabilities in batch predictions, and predict_frame for online predictions.

The held-out split is a public contract (FitMetrics in jobs.proto): a user
rebuilds it with one train_test_split call and must get exactly the rows
that were scored and that early stopping stopped on. So these tests rebuild
it that way and compare with the saved model, never with ml's own helpers.
"""

from __future__ import annotations

import math
import pickle
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

import ml
from ml.model import Validation, predict_frame, probability_column
from tests.test_ml import QUICK, small_train, write

ROWS = 300


def mixed_train(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A learnable problem with a float, an int, a categorical, a boolean
    and a numbers-as-text feature, and some label noise (so that held-out
    rows score differently from training rows)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    signal = a + (colour == "red") + rng.normal(scale=0.7, size=rows)
    return pd.DataFrame(
        {
            "a": a,
            "n": rng.integers(0, 10, size=rows),
            "colour": pd.Categorical(colour),
            "flag": rng.random(rows) < 0.5,
            "text": pd.array([f"{v:.2f}" for v in rng.normal(size=rows)], dtype="str"),
            "y": (signal > 0.5).astype(int),
        }
    )


def fit(
    df: pd.DataFrame, tmp_path, **params
) -> tuple[ml.FitSummary, HistGradientBoostingClassifier]:
    """ml.fit on `df` written as Parquet: its summary and the saved model."""
    summary = ml.fit(write(df, tmp_path / "train.parquet"), tmp_path / "model.joblib", params)
    return summary, joblib.load(tmp_path / "model.joblib")


def held_out(df: pd.DataFrame, validation: Validation):
    """The user's rebuild of the held-out split: X_train, X_val, y_train, y_val."""
    return train_test_split(
        df.drop(columns="y"),
        df["y"],
        test_size=validation.fraction,
        stratify=df["y"],
        random_state=validation.seed,
    )


def assert_scores_are_on(model, X_val, y_val, validation: Validation) -> None:
    assert validation.rows == len(y_val)
    assert validation.accuracy == accuracy_score(y_val, model.predict(X_val))
    assert validation.log_loss == log_loss(y_val, model.predict_proba(X_val), labels=model.classes_)


# -- FitSummary ----------------------------------------------------------------


def test_the_summary_describes_the_saved_model(tmp_path):
    df = mixed_train()
    summary, model = fit(df, tmp_path, max_iter=7)
    assert summary.rows == ROWS and summary.validation is None  # 300 rows: nothing held out
    assert summary.classes == [0, 1] and all(type(c) is int for c in summary.classes)
    assert summary.features == ["a", "n", "colour", "flag", "text"] == list(model.feature_names_in_)
    # pandas writes its text as Arrow large_string; the categorical column is dictionary-encoded
    assert summary.feature_types == ["double", "int64", "category", "bool", "large_string"]
    assert summary.n_iter == model.n_iter_ == 7
    assert summary.model_bytes == (tmp_path / "model.joblib").stat().st_size
    assert 0 < summary.fit_seconds < 60


def test_only_features_fitted_as_categorical_are_typed_category(tmp_path):
    """Only what the model fitted as categorical is "category"; an int
    column it fitted as numbers keeps its Arrow type."""
    df = small_train(count=np.arange(200, dtype=np.int32), colour=pd.Categorical(["r", "b"] * 100))
    summary, model = fit(df, tmp_path, **QUICK)
    assert model.is_categorical_.tolist() == [False, False, False, True]
    assert summary.feature_types == ["double", "double", "int32", "category"]


def test_the_fit_seconds_are_the_fit_alone(tmp_path, monkeypatch):
    """Reading the data and saving the model are not counted."""
    import ml.artifact

    dump = ml.artifact.joblib.dump

    def slow_dump(*args, **kwargs):
        time.sleep(0.5)
        return dump(*args, **kwargs)

    monkeypatch.setattr(ml.artifact.joblib, "dump", slow_dump)
    summary, _ = fit(mixed_train(), tmp_path, max_iter=3)
    assert 0 < summary.fit_seconds < 0.5


# -- the held-out split ----------------------------------------------------------


def test_validation_fraction_holds_rows_out_and_scores_exactly_them(tmp_path):
    df = mixed_train()
    summary, model = fit(df, tmp_path, validation_fraction=0.25, random_state=3, max_iter=10)
    validation = summary.validation
    assert (validation.fraction, validation.seed, validation.rows) == (0.25, 3, 75)
    assert summary.rows == ROWS - 75

    X_train, X_val, y_train, y_val = held_out(df, validation)
    assert_scores_are_on(model, X_val, y_val, validation)
    # Scored on the held-out rows, not the training ones (which score better).
    assert validation.log_loss > log_loss(y_train, model.predict_proba(X_train))

    # Early stopping is off (300 rows, "auto"): the model is a plain fit on
    # the training part, without the held-out rows.
    assert model.do_early_stopping_ is False
    on_train = HistGradientBoostingClassifier(max_iter=10, random_state=3).fit(X_train, y_train)
    on_all = HistGradientBoostingClassifier(max_iter=10, random_state=3).fit(
        df.drop(columns="y"), df["y"]
    )
    everything = df.drop(columns="y")
    np.testing.assert_array_equal(
        model.predict_proba(everything), on_train.predict_proba(everything)
    )
    assert not np.array_equal(model.predict_proba(everything), on_all.predict_proba(everything))


@pytest.mark.parametrize(
    "rows, params",
    [
        # just over 10,000 rows: scikit-learn's "auto" would look at the
        # 9,045 rows left after the split and not stop early at all
        pytest.param(10_050, {}, id="auto-above-10000-rows"),
        pytest.param(
            600, {"early_stopping": True, "validation_fraction": 0.3}, id="on-with-a-fraction"
        ),
    ],
)
def test_early_stopping_stops_on_the_reported_rows(rows, params, tmp_path):
    df = mixed_train(rows, seed=1).drop(columns=["text"])
    settings = {"max_iter": 200, "learning_rate": 0.5, "random_state": 5, **params}
    summary, model = fit(df, tmp_path, **settings)
    validation = summary.validation
    fraction = params.get("validation_fraction", 0.1)
    assert (validation.fraction, validation.seed) == (fraction, 5)
    assert validation.rows == math.ceil(fraction * rows) and summary.rows == rows - validation.rows
    assert model.do_early_stopping_ and summary.n_iter == model.n_iter_ < 200  # it did stop early
    assert model.get_params()["early_stopping"] == params.get("early_stopping", "auto")  # as asked

    X_train, X_val, y_train, y_val = held_out(df, validation)
    assert_scores_are_on(model, X_val, y_val, validation)
    again = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.5, random_state=5, early_stopping=True
    ).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    assert again.n_iter_ == model.n_iter_
    everything = df.drop(columns="y")
    np.testing.assert_array_equal(model.predict_proba(everything), again.predict_proba(everything))


def test_without_a_random_state_a_fresh_seed_is_reported_and_rebuilds_the_split(tmp_path):
    df = mixed_train()
    first, model = fit(df, tmp_path, validation_fraction=0.2, max_iter=5)
    seed = first.validation.seed
    assert isinstance(seed, int) and 0 <= seed < 2**32 - 1
    _, X_val, _, y_val = held_out(df, first.validation)
    assert_scores_are_on(model, X_val, y_val, first.validation)
    assert model.get_params()["random_state"] is None  # the estimator's own setting is untouched

    second, _ = fit(df, tmp_path, validation_fraction=0.2, max_iter=5)
    assert second.validation.seed != seed  # fresh each time (equal once in 4 billion)


def test_nothing_is_held_out_without_early_stopping_or_a_fraction(tmp_path):
    df = pd.DataFrame({"a": np.arange(10_001) % 9, "y": np.arange(10_001) % 2})
    summary, model = fit(df, tmp_path, early_stopping=False, max_iter=2)
    assert summary.validation is None and summary.rows == 10_001
    assert model.do_early_stopping_ is False


def test_string_labels_are_scored(tmp_path):
    df = mixed_train().assign(y=lambda d: d["y"].map({0: "no", 1: "yes"}))
    summary, model = fit(df, tmp_path, validation_fraction=0.3, random_state=0, max_iter=5)
    assert summary.classes == ["no", "yes"]
    _, X_val, _, y_val = held_out(df, summary.validation)
    assert_scores_are_on(model, X_val, y_val, summary.validation)


def test_the_progress_says_what_is_held_out(tmp_path):
    reports = []
    ml.fit(
        write(mixed_train(), tmp_path / "t.parquet"),
        tmp_path / "m.joblib",
        {"validation_fraction": 0.25, "max_iter": 5},
        lambda fraction, message: reports.append((fraction, message)),
    )
    messages = [message for _, message in reports]
    assert "fitting on 225 rows × 5 features (75 rows held out)" in messages
    assert "scoring 75 held-out rows" in messages
    assert any(message.startswith("boosting round") for message in messages)
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] < 1


def test_a_bad_validation_fraction_given_to_fit_directly_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^params\.validation_fraction must be between 0 and 1"):
        fit(mixed_train(), tmp_path, validation_fraction=5)


@pytest.mark.parametrize(
    "labels, params, expected",
    [
        pytest.param(
            [0, 1, 2] + [0, 1] * 98 + [0],
            {"validation_fraction": 0.2},
            "validation_fraction 0.2 holds out 40 of 200 rows for validation, stratified by class, so every "
            "class in 'y' needs at least 2 rows; 1 class has only one: 2. Add rows of that class or drop it, "
            "or fit without the parameter validation_fraction, and upload again.",
            id="single-row-class",
        ),
        pytest.param(
            np.arange(200) % 40,
            {"validation_fraction": 0.9},
            "validation_fraction 0.9 holds out 180 of 200 rows for validation, stratified by class, which "
            "leaves 20 rows to train on, too few for the 40 classes in 'y'. Add rows, use fewer classes, set "
            "validation_fraction between 0.2 and 0.8, or fit without the parameter validation_fraction, "
            "and upload again.",
            id="too-few-to-train-on",
        ),
        pytest.param(
            np.arange(200) % 40,
            {"validation_fraction": 0.1, "early_stopping": True},
            "validation_fraction 0.1 holds out 20 of 200 rows for validation, stratified by class, which is "
            "too few rows for the 40 classes in 'y'. Add rows, use fewer classes, set validation_fraction "
            'between 0.2 and 0.8, or fit without the parameter validation_fraction and with early_stopping set to "false", and upload again.',
            id="too-few-held-out-with-early-stopping",
        ),
        pytest.param(
            np.arange(200) % 120,
            {"early_stopping": True},
            "early stopping holds out 20 of 200 rows for validation, stratified by class, so every class in "
            "'y' needs at least 2 rows; 40 classes have only one: 80, 81,",
            id="early-stopping-default",
        ),
        pytest.param(
            np.arange(200) % 100,
            {"validation_fraction": 0.4},
            "validation_fraction 0.4 holds out 80 of 200 rows for validation, stratified by class, which is "
            "too few rows for the 100 classes in 'y'. Add rows, use fewer classes, set validation_fraction "
            "to 0.5, or fit without the parameter validation_fraction, and upload again.",
            id="exactly-one-fraction-works",
        ),
    ],
)
def test_a_split_that_cannot_be_made_says_what_to_change(labels, params, expected, tmp_path):
    df = small_train().assign(y=labels)
    with pytest.raises(ml.DataError) as raised:
        fit(df, tmp_path, max_iter=2, **params)
    assert str(raised.value).startswith(expected)


# 100 classes in 200 rows: sklearn asks whether y is a regression target; it is not.
MANY_CLASSES = pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")


@MANY_CLASSES
def test_the_fractions_a_split_message_suggests_work(tmp_path):
    df = small_train().assign(y=np.arange(200) % 40)
    for fraction in (0.2, 0.8):  # the ends of "between 0.2 and 0.8" in the message above
        summary, _ = fit(df, tmp_path, validation_fraction=fraction, max_iter=2)
        assert summary.validation.rows == math.ceil(fraction * 200)
    with pytest.raises(ml.DataError, match="between 0.2 and 0.8"):
        fit(df, tmp_path, validation_fraction=0.81, max_iter=2)


@MANY_CLASSES
def test_the_one_workable_fraction_works(tmp_path):
    """100 classes of 2 rows in 200: "set validation_fraction to 0.5" above."""
    df = small_train().assign(y=np.arange(200) % 100)
    assert fit(df, tmp_path, validation_fraction=0.5, max_iter=1)[0].validation.rows == 100


# -- probabilities in batch predictions --------------------------------------------


@pytest.mark.parametrize(
    "labels, names",
    [
        pytest.param([0, 1], ["proba_0", "proba_1"], id="binary-numbers"),
        pytest.param(["no", "yes"], ["proba_no", "proba_yes"], id="text"),
        pytest.param(
            ["cat", "dog", "emu"], ["proba_cat", "proba_dog", "proba_emu"], id="three-texts"
        ),
        pytest.param(
            [3, 7, 11, 20], ["proba_3", "proba_7", "proba_11", "proba_20"], id="four-numbers"
        ),
    ],
)
def test_predictions_with_probabilities(labels, names, tmp_path):
    df = mixed_train()
    df["y"] = np.array(labels)[
        (df["a"].rank(pct=True) * len(labels)).astype(int).clip(0, len(labels) - 1)
    ]
    _, model = fit(df, tmp_path, **QUICK)
    data = write(df.drop(columns="y"), tmp_path / "data.parquet")
    ml.predict(tmp_path / "model.joblib", data, tmp_path / "p.parquet", probabilities=True)
    out = pd.read_parquet(tmp_path / "p.parquet")

    assert (
        list(out.columns)
        == ["y", *names]
        == ["y", *map(probability_column, model.classes_.tolist())]
    )
    probabilities = out[names].to_numpy()
    assert (out[names].dtypes == np.float64).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(probabilities, model.predict_proba(df.drop(columns="y")))
    assert list(out["y"]) == list(model.classes_[probabilities.argmax(axis=1)])
    assert list(out["y"]) == list(model.predict(df.drop(columns="y")))

    ml.predict(tmp_path / "model.joblib", data, tmp_path / "plain.parquet")
    plain = pd.read_parquet(tmp_path / "plain.parquet")
    assert list(plain.columns) == ["y"]
    pd.testing.assert_series_equal(plain["y"], out["y"])


def test_probability_column_names():
    assert [probability_column(label) for label in (0, 1, "cat", 2.5, True)] == [
        "proba_0",
        "proba_1",
        "proba_cat",
        "proba_2.5",
        "proba_True",
    ]


def test_classes_that_would_share_a_probability_column_are_a_data_error(tmp_path):
    """1 and "1" cannot both be in a Parquet column 'y', but a model file may say so."""
    _, model = fit(small_train(), tmp_path, **QUICK)
    model.classes_ = np.array([1, "1"], dtype=object)
    joblib.dump(model, tmp_path / "odd.joblib")
    data = write(small_train().drop(columns="y"), tmp_path / "data.parquet")
    with pytest.raises(ml.DataError) as raised:
        ml.predict(tmp_path / "odd.joblib", data, tmp_path / "p.parquet", probabilities=True)
    assert str(raised.value).startswith(
        "the model has classes that differ only in type (a number and a text), whose probability columns "
        "would have one name: proba_1 (for 1 and '1')."
    )
    assert not (tmp_path / "p.parquet").exists()


# -- predict_frame ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    """A model on mixed_train's columns, and its path."""
    path = tmp_path_factory.mktemp("mixed") / "model.joblib"
    ml.fit(write(mixed_train(), path.with_suffix(".parquet")), path, QUICK)
    return joblib.load(path), path


def test_predict_frame_agrees_with_predict(mixed_model, tmp_path):
    model, path = mixed_model
    rows = mixed_train(40, seed=9)
    shuffled = rows[["y", "text", "flag", "colour", "n", "a"]].assign(note="extra")
    labels, probabilities = predict_frame(model, shuffled)

    ml.predict(
        path, write(rows, tmp_path / "d.parquet"), tmp_path / "p.parquet", probabilities=True
    )
    out = pd.read_parquet(tmp_path / "p.parquet")
    np.testing.assert_array_equal(probabilities, out.drop(columns="y").to_numpy())
    np.testing.assert_array_equal(labels, out["y"].to_numpy())
    assert labels.dtype == model.classes_.dtype


def test_predict_frame_takes_rows_as_a_server_builds_them_from_json(mixed_model):
    """Dicts in any key order, None for missing values, texts for
    categories and for numbers, unknown keys."""
    model, _ = mixed_model
    rows = [
        {"colour": "red", "a": 0.5, "n": 3, "flag": True, "text": "1.5", "id": "r1"},
        {"a": None, "n": None, "flag": False, "text": None, "colour": None, "id": "r2"},
    ]
    labels, probabilities = predict_frame(model, pd.DataFrame(rows))
    expected = pd.DataFrame(
        {
            "a": [0.5, np.nan],
            "n": [3.0, np.nan],
            "colour": pd.Categorical(["red", None]),
            "flag": [1.0, 0.0],
            "text": [1.5, np.nan],
        }
    )
    np.testing.assert_allclose(probabilities, model.predict_proba(expected), rtol=0, atol=1e-12)
    assert list(labels) == list(model.predict(expected))


@pytest.mark.parametrize(
    "change, columns, expected",
    [
        pytest.param(
            lambda rows: rows.drop(columns=["n"]),
            ["n"],
            "prediction data is missing 1 column the model was trained on: n. Send every training feature "
            "column (a, n, colour, flag, text) in each row — extra columns are ignored.",
            id="missing",
        ),
        pytest.param(
            lambda rows: rows.drop(columns=["text", "a"]),
            ["a", "text"],
            "prediction data is missing 2 columns the model was trained on: a, text.",
            id="two-missing-in-model-order",
        ),
        pytest.param(
            lambda rows: rows.assign(a="n/a"),
            ["a"],
            "prediction data has 1 feature column holding other values than the model was trained on: "
            "a (str here, numbers in training). Send it as in the training data (numbers for numbers, text "
            "for categories).",
            id="text-for-numbers",
        ),
        pytest.param(
            lambda rows: rows.assign(colour=1.0, flag="yes"),
            ["colour", "flag"],
            "prediction data has 2 feature columns holding other values than the model was trained on: "
            "colour (float64 here, text in training), flag (str here, numbers in training).",
            id="two-mistyped-in-model-order",
        ),
        pytest.param(
            lambda rows: pd.concat([rows, rows[["a"]]], axis=1),
            ["a"],
            "prediction data has more than one column named a (2 times). Each column needs its own name: "
            "rename or drop the duplicates and send the rows again.",
            id="duplicate-names",
        ),
        pytest.param(
            lambda rows: rows.iloc[:0],
            [],
            "prediction data has 0 rows. Send at least one row to predict.",
            id="no-rows",
        ),
    ],
)
def test_predict_frame_names_the_columns_at_fault(change, columns, expected, mixed_model):
    model, _ = mixed_model
    with pytest.raises(ml.DataError) as raised:
        predict_frame(model, change(mixed_train(5).drop(columns="y")))
    assert str(raised.value).startswith(expected)
    assert raised.value.columns == columns


def test_a_missing_column_in_a_file_is_named_too(mixed_model, tmp_path):
    _, path = mixed_model
    data = write(mixed_train(5).drop(columns=["y", "flag"]), tmp_path / "d.parquet")
    with pytest.raises(ml.DataError) as raised:
        ml.predict(path, data, tmp_path / "p.parquet")
    assert raised.value.columns == ["flag"]
    assert "Upload a file with every training feature column" in str(raised.value)


def test_data_error_columns_cross_the_workers_pipe():
    error = ml.DataError("a is missing. Add it.", columns=["a", "b"])
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.columns) == ("a is missing. Add it.", ["a", "b"])
    assert ml.DataError("no columns at fault").columns == []
