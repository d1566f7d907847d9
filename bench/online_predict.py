"""Online predictions under load: single-row Predict calls from many
concurrent clients for 45 s, straight to the predictor pool (as a high-rate
caller would reach it), on a stack with one predictor per usable core.

The generator is bench/load.py's (asyncio + grpc.aio in this process,
closed loop, bounded in seconds and calls), over CHANNELS channels, each
spreading its calls over every predictor (round_robin over the pool's
addresses, as the SDK does). Its own CPU is reported beside the
predictors': it shares the same cores.

Against:
- the reference inference API's ~1,100 req/s (50,000 requests in 45 s);
- a bare in-process loop of predict_proba on one row, on one thread, with
  the same model: what one core does with no server at all; beside it the
  same loop through the model's compiled form (what the predictors answer
  with: services/predictor/compiled.py);
- the transport's ceiling: the same generator against echo servers of
  Predict (bench/grpc_ceiling.py), as many processes as predictors.
Predict through the gateway (one hop more) has a goal of its own (issue
24). Also measured (no goal): many single-row requests on a few
StreamPredict streams, and the same load on one predictor.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import pandas as pd

from fityard import Client
from fityard.v1 import predictions_pb2, predictions_pb2_grpc
from services.common.config import usable_cores
from services.embedded import EmbeddedStack

from .cpu import cpu_seconds, own_cpu_seconds
from .grpc_ceiling import PredictEcho
from .load import run_loops
from .measure import Figure, percentile

CLIENTS = 32
CHANNELS = 8
SECONDS = 45.0
MAX_CALLS = 200_000  # the bound on calls; 45 s at the goal's rate is 90,000
REFERENCE_REQ_S = 1100.0  # the reference API: 50,000 requests in 45 s
# Issue 24's goals: straight to the pool, and through the gateway.
GOAL_REQ_S, GOAL_P99_MS, GOAL_CALLS = 3000.0, 20.0, 50_000
GATEWAY_GOAL_REQ_S, GATEWAY_GOAL_P99_MS = 2000.0, 30.0
STREAMS, STREAM_IN_FLIGHT = 4, 16
# A channel of its own connections, spreading calls over every address of
# the pool's target (as the SDK's predict channel does).
_SPREAD_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
]


def _request(model_id: str, row: dict) -> predictions_pb2.PredictRequest:
    request = predictions_pb2.PredictRequest(model_id=model_id)
    request.rows.add().update(row)
    return request


async def _unary(address: str, request, clients: int, seconds: float) -> tuple[list[float], int]:
    """Closed-loop single-row Predict calls: (latencies, errors)."""
    channels = [
        grpc.aio.insecure_channel(address, options=_SPREAD_OPTIONS) for _ in range(CHANNELS)
    ]
    stubs = [predictions_pb2_grpc.PredictionServiceStub(c) for c in channels]
    errors = 0

    async def predict(i: int) -> None:
        nonlocal errors
        try:
            await stubs[i % CHANNELS].Predict(request, timeout=30)
        except grpc.aio.AioRpcError:
            errors += 1

    try:
        return await run_loops(predict, clients, seconds, max_calls=MAX_CALLS), errors
    finally:
        for channel in channels:
            await channel.close()


async def _streamed(address: str, request, seconds: float) -> int:
    """Single-row requests on STREAMS StreamPredict streams, STREAM_IN_FLIGHT
    at a time on each: answers received."""
    message = predictions_pb2.StreamPredictRequest(request=request)
    deadline = time.perf_counter() + seconds
    answered = 0

    async def one(stub) -> None:
        nonlocal answered
        room = asyncio.Semaphore(STREAM_IN_FLIGHT)

        async def requests():
            while time.perf_counter() < deadline:
                await room.acquire()
                yield message

        async for _ in stub.StreamPredict(requests(), timeout=seconds + 30):
            answered += 1
            room.release()

    # round_robin: the streams (calls) go to the predictors in turn
    async with grpc.aio.insecure_channel(address, options=_SPREAD_OPTIONS) as channel:
        stub = predictions_pb2_grpc.PredictionServiceStub(channel)
        await asyncio.gather(*(one(stub) for _ in range(STREAMS)))
    return answered


def bare_loop(model_path: Path, row: pd.DataFrame, seconds: float) -> tuple[float, float, float]:
    """predict_proba on one row, again and again on one thread, in this
    process: calls/s with a one-row DataFrame, with a one-row array, and
    with the array through the model's compiled form."""
    import warnings

    from threadpoolctl import threadpool_limits

    from ml.artifact import read
    from services.predictor.compiled import Compiled, compile_model

    model = read(model_path)
    compiled = compile_model(model)
    if not isinstance(compiled, Compiled):
        raise RuntimeError(f"the seed's model was not compiled: {compiled.detail}")
    array = row.to_numpy(dtype="float64")
    rates = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        for predict, X in (
            (model.predict_proba, row),
            (model.predict_proba, array),
            (compiled.predict_proba, array),
        ):
            predict(X)  # warm
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                predict(X)
                calls += 1
            rates.append(calls / (time.perf_counter() - started))
    return rates[0], rates[1], rates[2]


def _measured_run(stack: EmbeddedStack, names: list[str], request, seconds: float) -> dict:
    """One closed-loop run of single-row Predict calls straight to the pool:
    rate, latencies, errors, and the CPU of predictors `names` and of this
    process (the generator)."""
    predictors = [stack.pid(name) for name in names]
    before, mine, started = cpu_seconds(predictors), own_cpu_seconds(), time.perf_counter()
    latencies, errors = asyncio.run(_unary(stack.predict_address, request, CLIENTS, seconds))
    elapsed = time.perf_counter() - started
    after = cpu_seconds(predictors)
    return {
        "req_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "calls": len(latencies),
        "errors": errors,
        "predictor_cores": sum(after[p] - before[p] for p in predictors) / elapsed,
        "generator_cores": (own_cpu_seconds() - mine) / elapsed,
    }


def measure_online(
    work: Path, seed_path: Path, seconds: float = SECONDS, repeats: int = 3, say=print
) -> list[Figure]:
    cores = usable_cores()
    frame = pd.read_parquet(seed_path)
    row = frame.drop(columns=["y"]).head(1)
    with (
        EmbeddedStack(work / "fityard-online", trainers=1, predictors=cores) as stack,
        Client(stack.address) as client,
    ):
        # seeded: the model (its rounds, so its cost per call) is the same in every run
        fit = client.fit(client.upload(seed_path), random_state=0).wait(timeout=600)
        with tempfile.TemporaryDirectory() as tmp:
            model_path = client.download(fit, tmp, "model")
            bare_frame, bare_array, bare_compiled = bare_loop(model_path, row, min(seconds, 5.0))
        request = _request(fit.id, row.iloc[0].to_dict())
        client.predict_rows(fit, [row.iloc[0].to_dict()])  # loaded in one predictor, at least
        names = [n for n in stack.names() if n.startswith("predictor")]
        runs = []
        for attempt in range(repeats):
            runs.append(_measured_run(stack, names, request, seconds))
            say(f"online Predict, run {attempt + 1}: {runs[-1]}")
        side = min(seconds, 15.0)
        streamed = asyncio.run(_streamed(stack.predict_address, request, side)) / side
        through_gateway, gateway_errors = asyncio.run(_unary(stack.address, request, CLIENTS, side))
        gateway_req_s = len(through_gateway) / side
        gateway_p99_ms = percentile(through_gateway, 99) * 1000
        # The same load on one predictor: the others stopped, the pool's
        # channels carry on with the one left.
        for name in names[1:]:
            stack.process(name).terminate()
            stack.process(name).wait(30)
        alone = _measured_run(stack, names[:1], request, side)
        say(f"online Predict, one predictor: {alone}")
    with PredictEcho(cores) as echo:
        echoed, _ = asyncio.run(
            _unary(echo.address, _request("job_x", row.iloc[0].to_dict()), CLIENTS, side)
        )
    ceiling = len(echoed) / side

    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    spread = {key: [min(r[key] for r in runs), max(r[key] for r in runs)] for key in runs[0]}
    system = f"fityard ({cores} predictors, {CLIENTS} clients, single-row Predict, {seconds:.0f} s)"
    met = (
        median["req_s"] >= GOAL_REQ_S
        and median["p99_ms"] <= GOAL_P99_MS
        and median["calls"] >= GOAL_CALLS * seconds / SECONDS
        and not any(r["errors"] for r in runs)
    )
    common = {
        "runs": runs,
        "spread": spread,
        "reference_req_s": REFERENCE_REQ_S,
        "vs_reference": median["req_s"] / REFERENCE_REQ_S,
        "grpc_echo_ceiling_req_s": ceiling,
        "vs_grpc_echo_ceiling": median["req_s"] / ceiling,
        "bare_predict_proba_array_per_s": bare_array,
        "bare_compiled_per_s": bare_compiled,
        "model_rounds": fit.metrics.n_iter,
        "features": row.shape[1],
    }
    goal = f">= {GOAL_REQ_S:,.0f} req/s with p99 <= {GOAL_P99_MS:.0f} ms, >= {GOAL_CALLS:,} requests in 45 s"
    return [
        Figure(
            "online Predict: single-row requests/s",
            system,
            median["req_s"],
            "req/s",
            bare_frame,
            "bare predict_proba loop, one row (DataFrame), one thread",
            goal,
            met=met,
            extra={**common, **{k: median[k] for k in ("p50_ms", "p99_ms", "calls", "errors")}},
        ),
        Figure(
            "online Predict: p99 latency of single-row requests",
            system,
            median["p99_ms"],
            "ms",
            median["p50_ms"],
            "p50 of the same calls",
            goal,
            met=met,
            extra={
                "predictor_cores": median["predictor_cores"],
                "generator_cores": median["generator_cores"],
            },
        ),
        Figure(
            "online Predict: transport ceiling (echo servers, same generator)",
            f"grpc.aio echo of Predict ({cores} processes, {CLIENTS} clients)",
            median["req_s"],
            "req/s",
            ceiling,
            "echo servers: no model, a fixed answer",
        ),
        Figure(
            "online StreamPredict: single-row requests/s on streams",
            f"fityard ({STREAMS} streams, {STREAM_IN_FLIGHT} requests in flight each)",
            streamed,
            "req/s",
            median["req_s"],
            "unary Predict, the same stack",
        ),
        Figure(
            "online Predict on one predictor (the same load, the pool's others stopped)",
            f"fityard (1 predictor, {CLIENTS} clients, {side:.0f} s)",
            alone["req_s"],
            "req/s",
            median["req_s"],
            f"{cores} predictors (the runs above)",
            extra=alone,
        ),
        Figure(
            "online Predict through the gateway (one hop more)",
            f"fityard ({CLIENTS} clients, via the gateway, {side:.0f} s)",
            gateway_req_s,
            "req/s",
            median["req_s"],
            "straight to the predictors",
            f">= {GATEWAY_GOAL_REQ_S:,.0f} req/s with p99 <= {GATEWAY_GOAL_P99_MS:.0f} ms",
            met=gateway_req_s >= GATEWAY_GOAL_REQ_S
            and gateway_p99_ms <= GATEWAY_GOAL_P99_MS
            and not gateway_errors,
            extra={"p99_ms": gateway_p99_ms, "errors": gateway_errors},
        ),
        Figure(
            "online: one-row predict_proba, compiled (Treelite) against scikit-learn",
            "the seed's model compiled (services/predictor/compiled.py), one thread, no server",
            bare_compiled,
            "calls/s",
            bare_array,
            "scikit-learn predict_proba on the same one-row array",
        ),
    ]
