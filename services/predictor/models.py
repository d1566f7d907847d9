"""The models a predictor keeps in memory.

Loading a model means reading its fit's record (is it a succeeded fit of
this tenant?), its file from the store, checking the file's SHA-256 against
the one its trainer recorded (joblib unpickles it: a file changed in the
store must never be), and unpickling it: tens of milliseconds to seconds.
So models stay in memory, least recently used dropped first once their
bytes (the model files' sizes, which is what an unpickled
HistGradientBoostingClassifier holds, give or take its small Python
objects) pass FITYARD_PREDICTOR_CACHE_BYTES. A model larger than the whole
bound is used for the requests that asked for it and not kept.

Each model is compiled as it is loaded (compiled.py: Treelite, checked to
answer exactly as scikit-learn does) and answered through the compiled form;
a model refused for compilation is served by scikit-learn, said in a log
line and counted (`engines`, `refusals`). The compiled form's bytes count
toward the bound beside the file's.

Requests for a model that is being loaded wait for that load: 50 callers
asking at once cause one load (`loads` counts them). A failed load (an
unknown id, a fit not done) is not remembered: the next request tries again.

A kept model is checked against its record again when it was last checked
more than RECHECK_SECONDS ago (in the background: the request is answered
from memory), so a model deleted or a fit id reused stops being served
within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from nats.js.kv import KeyValue

from fityard.v1 import jobs_pb2
from services.common import errors
from services.common.labels import to_values
from services.common.models import stored_model_key, succeeded_fit
from services.common.records import get_record
from services.common.resources import JOBS
from services.common.storage import ObjectStore
from services.internal.v1 import records_pb2

from .compiled import Compiled, Refusal, compile_model

log = logging.getLogger(__name__)

RECHECK_SECONDS = 5.0


@dataclass
class Model:
    """A loaded model and what answering with it needs, computed once."""

    tenant: str
    model_id: str
    estimator: Any
    sha256: str
    size: int
    # The feature columns, in the model's order: what each row must hold.
    features: list[str]
    # model.classes_ as wire Values (every answer carries them) and as the
    # batch predictions' column names.
    class_values: list
    proba_columns: list[str]
    # Every feature numeric (none categorical): rows may take the short way
    # (batching.py).
    numeric: bool
    # Its compiled form (compiled.py), or None: served by scikit-learn.
    compiled: Compiled | None = None
    checked: float = field(default_factory=time.monotonic)
    # Its batching.Batcher, made by the service on first use.
    batcher: Any = None


class ModelCache:
    def __init__(self, jobs: KeyValue, store: ObjectStore, max_bytes: int, executor: Executor):
        self.jobs = jobs
        self.store = store
        self.max_bytes = max_bytes
        self.executor = executor
        self._kept: OrderedDict[tuple[str, str], Model] = OrderedDict()
        self._loading: dict[tuple[str, str], asyncio.Task] = {}
        self._checking: set[asyncio.Task] = set()
        self.bytes = 0  # of the models kept
        self.loads = 0  # models loaded since start (a load per model asked for at once)
        self.evictions = 0
        # Models loaded and not compiled, by why (compiled.CANNOT_COMPILE...).
        self.refusals: Counter[str] = Counter()

    def engines(self) -> Counter[str]:
        """The models kept, by what answers for them: "treelite" or "scikit-learn"."""
        return Counter(
            "treelite" if model.compiled is not None else "scikit-learn"
            for model in self._kept.values()
        )

    def kept(self) -> list[str]:
        """The ids of the models in memory, least recently used first."""
        return [model_id for _, model_id in self._kept]

    async def get(self, tenant: str, model_id: str) -> Model:
        """The model, from memory or loaded (once, for every caller that
        asks meanwhile); ApiError NOT_FOUND/FAILED_PRECONDITION/... as
        services.common.models.succeeded_fit says."""
        errors.check_id("model_id", model_id, JOBS)
        key = (tenant, model_id)
        model = self._kept.get(key)
        if model is not None:
            self._kept.move_to_end(key)
            if time.monotonic() - model.checked > RECHECK_SECONDS:
                self._recheck(model)
            return model
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.create_task(self._load(tenant, model_id))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        # shield: a caller that goes away does not cancel the others' load
        return await asyncio.shield(loading)

    async def _load(self, tenant: str, model_id: str) -> Model:
        fit = await succeeded_fit(self.jobs, tenant, model_id)
        key = stored_model_key(tenant, fit)
        loop = asyncio.get_running_loop()
        estimator, size = await loop.run_in_executor(
            self.executor, self._read, key, fit.model_sha256, model_id
        )
        compiled = await loop.run_in_executor(self.executor, compile_model, estimator)
        self.loads += 1
        import ml  # the predictor's heavy import, already paid at start
        from ml.kinds import categorical

        model = Model(
            tenant=tenant,
            model_id=model_id,
            estimator=estimator,
            sha256=fit.model_sha256,
            size=size,
            features=[str(name) for name in estimator.feature_names_in_],
            class_values=to_values(estimator.classes_.tolist()),
            proba_columns=[ml.probability_column(label) for label in estimator.classes_.tolist()],
            numeric=not any(categorical(estimator)),
        )
        if isinstance(compiled, Refusal):
            self.refusals[compiled.why] += 1
            log.warning(
                "loaded model %s (%d bytes); served by scikit-learn, not compiled: %s",
                model_id,
                size,
                compiled.detail,
            )
        else:
            model.compiled = compiled
            model.size += compiled.nbytes
            log.info(
                "loaded model %s (%d bytes), compiled by Treelite (%d bytes more)",
                model_id,
                size,
                compiled.nbytes,
            )
        self._keep(model)
        return model

    def _read(self, key: str, expected_sha256: str, model_id: str) -> tuple[Any, int]:
        """The unpickled model and its file's size (in the executor's thread);
        FAILED_PRECONDITION MODEL_ALTERED, with ml.artifact's message (the
        one a batch predict fails with), if the file is not its fit's."""
        from ml.artifact import ModelAltered, load

        name = JOBS.name(model_id)
        data = b"".join(self.store.read_stream(key))
        try:
            return load(data, expected_sha256, name), len(data)
        except ModelAltered as exc:
            raise errors.failed_precondition(name, "MODEL_ALTERED", str(exc)) from None

    def _keep(self, model: Model) -> None:
        if model.size > self.max_bytes:
            log.warning(
                "model %s (%d bytes) is larger than FITYARD_PREDICTOR_CACHE_BYTES (%d): "
                "used for its requests, not kept",
                model.model_id,
                model.size,
                self.max_bytes,
            )
            return
        self._drop((model.tenant, model.model_id))
        self._kept[(model.tenant, model.model_id)] = model
        self.bytes += model.size
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._kept))
            self._drop(oldest)
            self.evictions += 1

    def _drop(self, key: tuple[str, str]) -> None:
        model = self._kept.pop(key, None)
        if model is not None:
            self.bytes -= model.size

    def _recheck(self, model: Model) -> None:
        model.checked = time.monotonic()  # one check at a time
        task = asyncio.create_task(self._still_valid(model))
        self._checking.add(task)
        task.add_done_callback(self._checking.discard)

    async def _still_valid(self, model: Model) -> None:
        try:
            found = await get_record(self.jobs, model.tenant, model.model_id, records_pb2.JobRecord)
        except Exception:
            log.warning("could not re-check model %s; kept", model.model_id, exc_info=True)
            return
        fit = found[0] if found else None
        if (
            fit is None
            or fit.state != jobs_pb2.JOB_STATE_SUCCEEDED
            or fit.model_sha256 != model.sha256
        ):
            log.info("model %s is gone or changed: dropped from memory", model.model_id)
            if self._kept.get((model.tenant, model.model_id)) is model:
                self._drop((model.tenant, model.model_id))
