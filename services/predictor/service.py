"""fityard.v1.PredictionService: rows in, labels and probabilities out."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from fityard.v1 import predictions_pb2, predictions_pb2_grpc
from ml.messages import DataError
from services.common import errors
from services.common.api_keys import current_tenant

from .batching import Batcher
from .models import ModelCache
from .rows import answer, arrow_answer, arrow_frame, refused, struct_rows

log = logging.getLogger(__name__)

# Requests of one StreamPredict stream answered at once (they are batched
# with each other and with other callers'); the stream reads no further
# ahead, which is its flow control.
STREAM_IN_FLIGHT = 64


class PredictionService(predictions_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models: ModelCache, executor: Executor, max_rows: int):
        self.models = models
        self.executor = executor
        self.max_rows = max_rows

    @errors.handle_errors
    async def Predict(self, request, context):
        return await self._answer(request, current_tenant())

    @errors.handle_errors
    async def StreamPredict(self, request_iterator, context):
        tenant = current_tenant()  # read here: the reader task below has its own context
        answers: asyncio.Queue = asyncio.Queue(STREAM_IN_FLIGHT)

        async def read() -> None:
            try:
                async for message in request_iterator:
                    task = asyncio.create_task(self._answer(message.request, tenant))
                    await answers.put(task)
            except Exception:  # the answers end too; `await reader` raises it
                await answers.put(None)
                raise
            await answers.put(None)

        reader = asyncio.create_task(read())
        try:
            while (task := await answers.get()) is not None:
                yield predictions_pb2.StreamPredictResponse(response=await task)
            await reader
        finally:
            reader.cancel()
            while not answers.empty():
                pending = answers.get_nowait()
                if pending is not None:
                    pending.cancel()

    async def _answer(self, request, tenant: str) -> predictions_pb2.PredictResponse:
        if request.rows and request.arrow_ipc:
            raise errors.invalid_argument(
                "arrow_ipc", "send the rows either as `rows` or as `arrow_ipc`, not both"
            )
        model = await self.models.get(tenant, request.model_id)
        if model.batcher is None:
            model.batcher = Batcher(model, self.executor)
        if request.arrow_ipc:
            frame = arrow_frame(request)
            self._check_size(len(frame), "arrow_ipc")
            field, rows = "arrow_ipc", frame
        else:
            self._check_size(len(request.rows), "rows")
            field, rows = "rows", struct_rows(request, model)
        try:
            probabilities = await model.batcher.predict(rows)
        except DataError as exc:
            raise refused(exc, field) from None
        respond = arrow_answer if request.arrow_ipc else answer
        response = respond(model, probabilities)
        response.request_id = request.request_id
        return response

    def _check_size(self, rows: int, field: str) -> None:
        if rows == 0:
            raise errors.invalid_argument(field, "holds no rows: send at least one row to predict")
        if rows > self.max_rows:
            raise errors.invalid_argument(
                field,
                f"holds {rows:,} rows, more than this server takes in one request "
                f"(FITYARD_PREDICT_MAX_ROWS={self.max_rows:,}): split them into several "
                "requests (StreamPredict takes many on one stream), or run a batch predict job",
            )
