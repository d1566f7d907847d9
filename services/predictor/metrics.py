"""The predictor's metrics, read at scrape time from its model cache: what it
holds in memory against its bound, how often it loads (a load per model
asked for, however many callers ask at once) and drops models. Requests,
their codes and latency are counted for every RPC by
services/common/metrics.py."""

from __future__ import annotations

from prometheus_client import Gauge

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


def watch(cache: ModelCache) -> None:
    CACHE_BYTES.set_function(lambda: float(cache.bytes))
    CACHE_LIMIT.set(cache.max_bytes)
    MODELS.set_function(lambda: float(len(cache.kept())))
    LOADS.set_function(lambda: float(cache.loads))
    EVICTIONS.set_function(lambda: float(cache.evictions))
