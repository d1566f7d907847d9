"""ml.fit / ml.predict on real Parquet files, the messages users get for bad
data and bad parameters, and the seed data generator."""
from __future__ import annotations

import decimal
import math
import subprocess
import sys
from numbers import Integral, Real
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils._param_validation import Interval, StrOptions

import ml
from fityard.data import make_data
from fityard.v1 import jobs_pb2
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


def write(df: pd.DataFrame, path):
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
        ml.predict(model_path, write(df, tmp_path / "data.parquet"), tmp_path / "predictions.parquet")
    assert not (tmp_path / "predictions.parquet").exists()
    return str(raised.value)


def small_train(**extra) -> pd.DataFrame:
    """A learnable two-feature problem, with extra columns as given."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    return pd.DataFrame({"a": a, "b": rng.normal(size=200), **extra, "y": (a > 0).astype(int)})


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
        files["train"], tmp_path / "model.joblib", params=QUICK, progress=lambda *a: fit_progress.append(a)
    )
    assert summary == ml.FitSummary(rows=ROWS * 3 // 4, features=FEATURES, classes=[0, 1])

    out = tmp_path / "predictions.parquet"
    result = ml.predict(tmp_path / "model.joblib", files["test"], out, progress=lambda *a: predict_progress.append(a))
    predictions, truth = pd.read_parquet(out), pd.read_parquet(files["test"])
    assert result == ml.PredictSummary(rows=len(truth))
    assert list(predictions.columns) == ["y"] and len(predictions) == len(truth)
    assert (predictions["y"] == truth["y"]).mean() > 0.85  # chance is 0.5

    assert f"fitting on {ROWS * 3 // 4} rows × 50 features" in [message for _, message in fit_progress]
    for reports in (fit_progress, predict_progress):
        fractions = [fraction for fraction, _ in reports]
        assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] < 1


def test_predict_ignores_extra_columns_and_column_order(files, model_path, tmp_path):
    test = pd.read_parquet(files["test"])
    expected = ml.predict(model_path, files["test"], tmp_path / "plain.parquet")
    shuffled = test[list(reversed(test.columns))].assign(note="free text", id=range(len(test)))
    ml.predict(model_path, write(shuffled, tmp_path / "shuffled.parquet"), tmp_path / "shuffled_out.parquet")
    assert expected.rows == len(test)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "shuffled_out.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
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
    summary = ml.predict(tmp_path / "m.joblib", write(as_text, tmp_path / "p.parquet"), tmp_path / "out.parquet")
    assert summary.rows == len(pd.read_parquet(tmp_path / "out.parquet")) == 200


def test_params_reach_the_estimator(files, tmp_path):
    params = to_sklearn_kwargs({"max_iter": 3, "early_stopping": "false", "max_bins": 16, "random_state": 7})
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
        f"training data has no column 'y'; columns found: {', '.join(FEATURES)}. "
        "Add the target column 'y' (the label to learn) and upload again."
    )


def test_a_long_column_list_is_cut_short(tmp_path):
    message = fit_error(pd.DataFrame({f"f{i}": [1.0] for i in range(80)}), tmp_path)
    assert "f0, f1," in message and "f49, … and 30 more." in message and "f50" not in message


def test_a_capitalised_target_gets_a_rename_hint(tmp_path):
    message = fit_error(small_train().rename(columns={"y": "Y"}), tmp_path)
    assert "no column 'y'" in message and "rename it to 'y'" in message


@pytest.mark.parametrize(
    "df, expected",
    [
        pytest.param(small_train().iloc[:0], "training data has 0 rows", id="zero-rows"),
        pytest.param(small_train()[["y"]], "training data has no feature columns", id="no-features"),
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
    assert message.startswith("prediction data is missing 3 columns the model was trained on: col_3, col_17, col_42.")


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(lambda t: t.iloc[:0], "prediction data has 0 rows", id="zero-rows"),
        pytest.param(
            lambda t: t.assign(col_7="n/a"),
            "prediction data has 1 feature column HistGradientBoostingClassifier cannot use: col_7 (str).",
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
    assert str(tmp_path) not in str(raised.value)  # a server-side temp path means nothing to the user


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
        ({"random_state": 2**32}, "params.random_state must be between 0 and 4294967295 (got 4294967296)"),
        ({"early_stopping": "yes"}, "params.early_stopping must be \"auto\", \"true\" or \"false\" (got 'yes')"),
        ({"n_estimators": 10}, f"params.n_estimators is not a fit parameter; known: {', '.join(NAMES)}"),
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
    "given, expected", [("auto", "auto"), ("true", True), ("False", False), (" TRUE ", True), (False, False)]
)
def test_early_stopping_is_converted_for_sklearn(given, expected):
    assert to_sklearn_kwargs({"early_stopping": given}) == {"early_stopping": expected}


def test_unset_params_keep_sklearns_defaults():
    assert validate_params({"max_depth": None}) == [] and to_sklearn_kwargs({"max_depth": None}) == {}


def test_every_fit_request_field_is_validated():
    """A field added to FitParams but not here would be refused as unknown."""
    assert set(jobs_pb2.FitParams.DESCRIPTOR.fields_by_name) == set(NAMES)


@pytest.mark.parametrize("name", [n for n in RANGES if n != "random_state"])
def test_ranges_agree_with_sklearn(name):
    """Our ranges are copies of HistGradientBoostingClassifier's constraints."""
    allowed = RANGES[name]
    [interval] = [c for c in HistGradientBoostingClassifier._parameter_constraints[name] if isinstance(c, Interval)]
    assert issubclass(interval.type, Integral) == (allowed.kind is Integral)
    assert issubclass(interval.type, Real)
    assert (interval.left, interval.right) == (allowed.low, allowed.high)
    assert interval.closed in (("right", "neither") if allowed.low_open else ("left", "both"))
    if allowed.high is not None:
        assert interval.closed in ("right", "both")


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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
