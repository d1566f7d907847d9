"""The predictor's metrics, read at scrape time from its model cache: what it
holds in memory against its bound, how often it loads (a load per model
asked for, however many callers ask at once) and drops models, and which
models are answered by their compiled form and which by scikit-learn
(a model refused for compilation: compiled.py). Requests,
their codes and latency are counted for every RPC by
services/common/metrics.py."""

from __future__ import annotations

from prometheus_client import Gauge

from .compiled import CANNOT_COMPILE, NOT_REPRODUCED
from .models import ModelCache

CACHE_BYTES = Gauge(
    "fityard_predictor_cache_bytes", "Bytes of the models this predictor keeps in memory."
)
CACHE_LIMIT = Gauge(
    "fityard_predictor_cache_limit_bytes", "Its bound (FITYARD_PREDICTOR_CACHE_BYTES)."
)
MODELS = Gauge("fityard_predictor_models", "Models this predictor keeps in memory.")
# Gauges of counts (set from the cache's own counters at scrape time), exposed
# with the _total name a counter would have.
LOADS = Gauge("fityard_predictor_model_loads_total", "Models loaded since the predictor started.")
EVICTIONS = Gauge(
    "fityard_predictor_model_evictions_total",
    "Models dropped from memory to stay within the bound.",
)

ENGINES = Gauge(
    "fityard_predictor_models_by_engine",
    "Models this predictor keeps in memory, by what answers for them: "
    "treelite (compiled) or scikit-learn (refused for compilation).",
    ["engine"],
)
REFUSALS = Gauge(
    "fityard_predictor_compile_refusals_total",
    "Models loaded and served by scikit-learn because compiling them was refused: "
    "cannot_compile (Treelite cannot take it) or not_reproduced (its answers differed).",
    ["why"],
)


def watch(cache: ModelCache) -> None:
    CACHE_BYTES.set_function(lambda: float(cache.bytes))
    CACHE_LIMIT.set(cache.max_bytes)
    MODELS.set_function(lambda: float(len(cache.kept())))
    LOADS.set_function(lambda: float(cache.loads))
    EVICTIONS.set_function(lambda: float(cache.evictions))
    for engine in ("treelite", "scikit-learn"):
        ENGINES.labels(engine).set_function(lambda engine=engine: float(cache.engines()[engine]))
    for why in (CANNOT_COMPILE, NOT_REPRODUCED):
        REFUSALS.labels(why).set_function(lambda why=why: float(cache.refusals[why]))
