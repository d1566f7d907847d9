"""Models a user can judge and serve, on real stacks: a fit's metrics and its
held-out score (checked against the predictions of those very rows), batch
predictions with class probabilities, and online predictions (Predict,
StreamPredict) through grpcurl, the SDK and the CLI, through the gateway and
straight from the predictor pool, answering exactly what a batch predict of
the same rows answers. Bad rows are refused naming the columns; a model
asked for by 50 callers at once is loaded once; the predictors' model cache
stays within its byte bound; a predictor's death is ridden over."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from google.rpc import error_details_pb2
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from fityard import Client, InvalidArgument
from services.embedded import EmbeddedStack
from tests.support.frames import categorical_training_file
from tests.support.grpcurl import grpcurl
from tests.test_cli import FITYARD
from tests.test_metrics import rpc, scrape, value

pytestmark = pytest.mark.stack

WAIT = 120


@pytest.fixture(scope="module")
def frames(seed_files):
    return {
        "train": pd.read_parquet(seed_files["train"]),
        "test": pd.read_parquet(seed_files["test"]).drop(columns=["y"], errors="ignore"),
    }


@pytest.fixture(scope="module")
def model(local_stack, seed_files):
    """A fit of the seed's training file (20 rounds), its id the model's."""
    with Client(local_stack.address) as c:
        return c.fit(c.upload(seed_files["train"]), max_iter=20, random_state=3).wait(WAIT).id


@pytest.fixture(scope="module")
def batch(local_stack, model, frames):
    """What a batch predict with probabilities answers for 7 test rows: the reference."""
    rows = frames["test"].head(7)
    with Client(local_stack.address) as c:
        job = c.predict(model, c.upload(rows), probabilities=True).wait(WAIT)
        return rows, c.download(job)


# -- fit metrics ------------------------------------------------------------------


def test_a_fit_reports_its_held_out_score_as_the_downloaded_predictions_of_those_rows_score(
    local_stack, frames, tmp_path
):
    train = frames["train"]
    with Client(local_stack.address) as c:
        fit = c.fit(c.upload(train), max_iter=20, validation_fraction=0.25, random_state=7)
        metrics = fit.wait(WAIT).metrics
        assert metrics is not None
        assert metrics.classes == [0, 1]
        assert list(metrics.features) == [f"col_{i}" for i in range(50)]
        assert set(metrics.features.values()) == {"double"}
        assert 0 < metrics.n_iter <= 20 and metrics.fit_seconds > 0
        assert metrics.model_size_bytes == c.download(fit, tmp_path, "model").stat().st_size
        assert metrics.validation_rows == math.ceil(0.25 * len(train))
        assert metrics.train_rows + metrics.validation_rows == len(train)
        assert fit.rows == metrics.train_rows  # the job's rows: those trained on
        # The user can rebuild the held-out rows, and score them as they would.
        _, X_val, _, y_val = train_test_split(
            train.drop(columns="y"),
            train["y"],
            test_size=metrics.validation_fraction,
            stratify=train["y"],
            random_state=metrics.validation_seed,
        )
        scored = c.download(c.predict(fit, c.upload(X_val), probabilities=True).wait(WAIT))
    accuracy = float((scored["y"].to_numpy() == y_val.to_numpy()).mean())
    assert abs(metrics.validation_accuracy - accuracy) <= 0.01
    loss = log_loss(y_val, scored[["proba_0", "proba_1"]].to_numpy(), labels=[0, 1])
    assert abs(metrics.validation_log_loss - loss) <= 0.01


def test_a_fit_without_held_out_rows_has_no_score_and_status_shows_the_metrics(
    local_stack, model, frames
):
    with Client(local_stack.address) as c:
        metrics = c.job(model).metrics
    # 2,250 rows: no early stopping, no validation_fraction: nothing held out
    assert metrics.validation_rows == 0 and metrics.train_rows == len(frames["train"])
    assert metrics.validation_accuracy is None and metrics.validation_log_loss is None
    shown = subprocess.run(
        [FITYARD, "status", model, "--address", local_stack.address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "classes:   0, 1" in shown.stdout
    assert "col_0 (double)" in shown.stdout
    assert f"{metrics.n_iter} boosting rounds" in shown.stdout
    assert "none: no rows were held out (fit with validation_fraction" in shown.stdout


# -- batch predictions with probabilities ----------------------------------------


def test_batch_probabilities_sum_to_one_and_their_argmax_is_y(local_stack, model, batch):
    _, predicted = batch
    assert list(predicted.columns) == ["y", "proba_0", "proba_1"]
    probabilities = predicted[["proba_0", "proba_1"]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (np.array([0, 1])[probabilities.argmax(axis=1)] == predicted["y"].to_numpy()).all()
    with Client(local_stack.address) as c:
        default = c.download(c.predict(model, c.upload(batch[0])).wait(WAIT))
    assert list(default.columns) == ["y"]  # without asking, one column as before
    assert (default["y"] == predicted["y"]).all()


# -- online predictions answer what the batch answers ----------------------------


def _same(labels, probabilities, expected: pd.DataFrame) -> None:
    assert list(labels) == expected["y"].tolist()
    assert np.allclose(
        np.asarray(probabilities), expected[["proba_0", "proba_1"]].to_numpy(), atol=1e-12
    )


def test_predict_rows_through_the_gateway_and_the_pool_answers_as_the_batch(
    local_stack, model, batch
):
    rows, expected = batch
    dicts = rows.to_dict("records")
    for address in (None, local_stack.predict_address):
        with Client(local_stack.address, predict_address=address) as c:
            answers = c.predict_rows(model, dicts)
            _same(
                [a.label for a in answers],
                [[a.probabilities[0], a.probabilities[1]] for a in answers],
                expected,
            )
            frame = c.predict_rows(model, rows)  # a DataFrame goes as Arrow
            assert list(frame.columns) == ["y", "proba_0", "proba_1"]
            assert (frame.index == rows.index).all()
            _same(frame["y"], frame[["proba_0", "proba_1"]], expected)


def test_the_stream_answers_each_request_in_order_as_the_batch(local_stack, model, batch):
    rows, expected = batch
    dicts = rows.to_dict("records")
    batches = [dicts[:1], dicts[1:3], rows.iloc[3:5], dicts[5:]]  # dicts and frames mixed
    with Client(local_stack.address) as c:
        answers = list(c.predict_stream(model, batches))
    assert len(answers) == 4
    labels, probabilities = [], []
    for answer in answers:
        if isinstance(answer, pd.DataFrame):
            labels += answer["y"].tolist()
            probabilities += answer[["proba_0", "proba_1"]].to_numpy().tolist()
        else:
            labels += [a.label for a in answer]
            probabilities += [[a.probabilities[0], a.probabilities[1]] for a in answer]
    _same(labels, probabilities, expected)


def test_grpcurl_predicts_json_rows_as_the_batch(local_stack, model, batch):
    rows, expected = batch
    request = {"model_id": model, "rows": rows.to_dict("records"), "request_id": "r-1"}
    for address in (local_stack.address, local_stack.predict_address):
        answer = json.loads(
            grpcurl("-d", json.dumps(request), address, "fityard.v1.PredictionService/Predict")
        )
        assert answer["classes"] == [0, 1] and answer["request_id"] == "r-1"
        _same(answer["labels"], [p["values"] for p in answer["probabilities"]], expected)


def test_the_cli_predicts_json_lines_from_stdin(local_stack, model, batch):
    rows, expected = batch
    lines = "".join(json.dumps(row) + "\n" for row in rows.to_dict("records"))
    result = subprocess.run(
        [FITYARD, "predict-rows", model, "--address", local_stack.address, "--batch-rows", "3"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    _same([a["y"] for a in answers], [[a["proba_0"], a["proba_1"]] for a in answers], expected)


def test_online_answers_equal_the_batchs_within_1e_9_for_2000_seed_rows(local_stack, model, frames):
    """The pool answers through the model's compiled form (Treelite): 2,000
    seed rows, as JSON values and as Arrow, give the batch predict's
    (scikit-learn's) labels and its probabilities within 1e-9."""
    rows = frames["train"].drop(columns=["y"]).head(2000)
    with Client(local_stack.address, predict_address=local_stack.predict_address) as c:
        expected = c.download(c.predict(model, c.upload(rows), probabilities=True).wait(WAIT))
        dicts = rows.to_dict("records")
        answers = [
            a for i in range(0, 2000, 250) for a in c.predict_rows(model, dicts[i : i + 250])
        ]
        frame = c.predict_rows(model, rows)
    want = expected[["proba_0", "proba_1"]].to_numpy()
    assert [a.label for a in answers] == frame["y"].tolist() == expected["y"].tolist()
    got = np.array([[a.probabilities[0], a.probabilities[1]] for a in answers])
    assert np.abs(got - want).max() <= 1e-9
    assert np.abs(frame[["proba_0", "proba_1"]].to_numpy() - want).max() <= 1e-9
    log = (local_stack.log_dir / "predictor-1.log").read_text()
    assert f"loaded model {model}" in log and "compiled by Treelite" in log


# -- bad rows ------------------------------------------------------------------------


def _violations(error: InvalidArgument) -> list[str]:
    found = [d for d in error.details if isinstance(d, error_details_pb2.BadRequest)]
    return [v.field for d in found for v in d.field_violations]


def test_a_missing_or_mistyped_column_is_refused_naming_it_and_others_are_served(
    local_stack, model, batch
):
    rows, expected = batch
    good = rows.to_dict("records")
    missing = [dict(good[0])]
    del missing[0]["col_3"]
    mistyped = [{**good[0], "col_5": "abc"}]
    with Client(local_stack.address) as c:
        with pytest.raises(InvalidArgument) as refused:
            c.predict_rows(model, missing)
        assert "rows[0] is missing 1 column the model was trained on: col_3" in str(refused.value)
        assert _violations(refused.value) == ["rows[0].col_3"]
        with pytest.raises(InvalidArgument) as refused:
            c.predict_rows(model, rows.drop(columns=["col_3"]))
        assert "col_3" in str(refused.value)
        assert _violations(refused.value) == ["arrow_ipc.col_3"]
        # A mistyped row sent alongside good ones (batched with them or not):
        # only it is refused.
        with ThreadPoolExecutor(8) as pool:
            bad = pool.submit(c.predict_rows, model, mistyped)
            goods = [pool.submit(c.predict_rows, model, good) for _ in range(7)]
            with pytest.raises(InvalidArgument) as refused:
                bad.result()
            for answer in goods:
                _same(
                    [a.label for a in answer.result()],
                    [list(a.probabilities.values()) for a in answer.result()],
                    expected,
                )
    assert "col_5 (str here, numbers in training)" in str(refused.value)
    assert _violations(refused.value) == ["rows.col_5"]


# -- the predictor's model cache --------------------------------------------------


CACHE_BYTES = 400_000  # models of 5-40 rounds on the seed files: 125-250 kB


@pytest.fixture(scope="module")
def cache_stack(tmp_path_factory):
    env = {"FITYARD_PREDICTOR_CACHE_BYTES": str(CACHE_BYTES)}
    with EmbeddedStack(
        tmp_path_factory.mktemp("predictor-cache"), trainers=1, predictors=1, metrics=True, env=env
    ) as running:
        yield running


def _cache(stack) -> dict[str, float]:
    samples = scrape(stack.metrics_url("predictor-1"))
    return {
        name: value(samples, f"fityard_predictor_{name}")
        for name in ("cache_bytes", "models", "model_loads_total", "model_evictions_total")
    }


def test_a_model_asked_for_by_50_callers_at_once_is_loaded_once(cache_stack, seed_files, frames):
    rows = frames["test"].head(1).to_dict("records")
    with Client(cache_stack.address) as c:
        fit = c.fit(c.upload(seed_files["train"]), max_iter=5).wait(WAIT)
        before = _cache(cache_stack)
        start = threading.Barrier(50)

        def ask(_):
            start.wait()
            return c.predict_rows(fit, rows)[0]

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(ask, range(50)))
    assert len({(a.label, tuple(a.probabilities.values())) for a in answers}) == 1
    after = _cache(cache_stack)
    assert after["model_loads_total"] - before["model_loads_total"] == 1
    # kept compiled, its compiled form counted in the bound beside its file
    assert after["models"] - before["models"] == 1
    assert after["cache_bytes"] - before["cache_bytes"] > fit.metrics.model_size_bytes
    engines = scrape(cache_stack.metrics_url("predictor-1"))
    assert (
        value(engines, "fityard_predictor_models_by_engine", engine="treelite") == after["models"]
    )


def test_the_model_cache_stays_within_its_byte_bound(cache_stack, seed_files, frames):
    rows = frames["test"].head(2).to_dict("records")
    with Client(cache_stack.address) as c:
        train = c.upload(seed_files["train"])
        fits = [c.fit(train, max_iter=n, random_state=1).wait(WAIT) for n in (5, 10, 20, 40)]
        sizes = [f.metrics.model_size_bytes for f in fits]
        assert sum(sizes) > CACHE_BYTES > max(sizes)  # they cannot all stay
        first = c.predict_rows(fits[0], rows)
        for fit in [*fits, fits[0]]:  # the first again, after it was dropped
            again = c.predict_rows(fit, rows)
            held = _cache(cache_stack)
            assert 0 < held["cache_bytes"] <= CACHE_BYTES
        assert again == first  # reloaded, same answers
    assert held["model_evictions_total"] >= 2
    assert held["models"] < 4


def test_a_model_treelite_cannot_take_is_served_by_scikit_learn_and_says_so(cache_stack, tmp_path):
    """Categorical features: Treelite cannot import them, so the model is
    answered by scikit-learn (as the batch predict answers), and the
    predictor's metrics and log say it was not compiled."""
    train = categorical_training_file(tmp_path / "train.parquet", rows=800, seed=4)
    rows = train.drop(columns=["y"]).head(20)
    before = scrape(cache_stack.metrics_url("predictor-1"))
    with Client(cache_stack.address) as c:
        fit = c.fit(c.upload(tmp_path / "train.parquet"), max_iter=10).wait(WAIT)
        expected = c.download(c.predict(fit, c.upload(rows), probabilities=True).wait(WAIT))
        frame = c.predict_rows(fit, rows)
    assert frame["y"].tolist() == expected["y"].tolist()
    columns = ["proba_0", "proba_1"]
    assert np.abs(frame[columns].to_numpy() - expected[columns].to_numpy()).max() <= 1e-12
    after = scrape(cache_stack.metrics_url("predictor-1"))
    refusals = "fityard_predictor_compile_refusals_total"
    assert (
        value(after, refusals, why="cannot_compile") - value(before, refusals, why="cannot_compile")
        == 1
    )
    assert value(after, "fityard_predictor_models_by_engine", engine="scikit-learn") >= 1
    log = (cache_stack.log_dir / "predictor-1.log").read_text()
    assert f"{fit.id}" in log and "served by scikit-learn, not compiled: it has categorical" in log


# -- a pool of two: calls spread over it, and one dies ------------------------------------


@pytest.fixture(scope="module")
def pool_stack(tmp_path_factory):
    """Two predictors. The last test of this module kills one."""
    with EmbeddedStack(
        tmp_path_factory.mktemp("predictor-pool"), trainers=1, predictors=2, metrics=True
    ) as running:
        yield running


def _predicts_served(stack) -> list[float]:
    """Predict calls each predictor has answered OK."""
    ok = rpc("Predict", service="fityard.v1.PredictionService")
    return [
        value(scrape(stack.metrics_url(name)), "grpc_server_handled_total", **ok)
        for name in ("predictor-1", "predictor-2")
    ]


def test_one_clients_calls_are_spread_over_every_predictor(pool_stack, seed_files, frames):
    # One client, one connection per predictor: its calls go to each in turn,
    # straight to the pool and through the gateway alike (not all of them to
    # whichever predictor its connection happened to reach).
    rows = frames["test"].head(1).to_dict("records")
    calls = 40
    with (
        Client(pool_stack.address, follow_predict_route=False) as via_gateway,
        Client(pool_stack.address, predict_address=pool_stack.predict_address) as direct,
    ):
        assert pool_stack.predict_address.startswith("ipv4:")  # both predictors, one target
        fit = via_gateway.fit(via_gateway.upload(seed_files["train"]), max_iter=5).wait(WAIT)
        for c in (direct, via_gateway):
            before = _predicts_served(pool_stack)
            answers = [c.predict_rows(fit, rows) for _ in range(calls)]
            served = [b - a for a, b in zip(before, _predicts_served(pool_stack), strict=True)]
            assert sum(served) == calls and min(served) >= calls / 4, served
            assert all(answer == answers[0] for answer in answers)


def _gateway_predicts(stack) -> float:
    ok = rpc("Predict", service="fityard.v1.PredictionService")
    return value(scrape(stack.metrics_url("gateway")), "grpc_server_handled_total", **ok)


def test_the_sdk_follows_the_gateway_to_the_pool_and_skips_its_hop(pool_stack, seed_files, frames):
    """`fityard up`'s gateway names its pool in each Predict it forwards: a
    client's next calls go there (one hop less), unless it opts out."""
    rows = frames["test"].head(1).to_dict("records")
    calls = 20
    with (
        Client(pool_stack.address) as follows,
        Client(pool_stack.address, follow_predict_route=False) as stays,
    ):
        fit = follows.fit(follows.upload(seed_files["train"]), max_iter=5).wait(WAIT)
        for client, through_gateway in ((follows, 1), (stays, calls)):
            gateway, served = _gateway_predicts(pool_stack), sum(_predicts_served(pool_stack))
            answers = [client.predict_rows(fit, rows) for _ in range(calls)]
            assert all(answer == answers[0] for answer in answers)
            deadline = time.monotonic() + 10  # a call is counted once it has ended
            while (
                sum(_predicts_served(pool_stack)) - served < calls and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            assert sum(_predicts_served(pool_stack)) - served == calls
            assert _gateway_predicts(pool_stack) - gateway == through_gateway


def test_predictions_carry_on_through_the_death_of_a_predictor(pool_stack, seed_files, frames):
    stack = pool_stack
    rows = frames["test"].head(3).to_dict("records")
    with Client(stack.address) as c:
        fit = c.fit(c.upload(seed_files["train"]), max_iter=5).wait(WAIT)
        expected = c.predict_rows(fit, rows)
        answered, stop = [], threading.Event()

        def keep_asking():
            while not stop.is_set():
                answered.append(c.predict_rows(fit, rows))

        asking = threading.Thread(target=keep_asking)
        asking.start()
        try:
            time.sleep(1.0)
            os.kill(stack.pid("predictor-1"), signal.SIGKILL)
            time.sleep(3.0)
        finally:
            stop.set()
            asking.join(60)
        after = len(answered)
        assert c.predict_rows(fit, rows) == expected
    assert after > 10 and all(a == expected for a in answered)
