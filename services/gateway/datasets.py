"""DatasetService: streamed Parquet uploads straight into the object store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from fityard.v1 import datasets_pb2, datasets_pb2_grpc
from services.common import errors
from services.common.bus import record_key
from services.common.digests import check_sha256
from services.common.keys import dataset_key
from services.common.records import encode, get_record, new_record_id
from services.common.resources import DATASETS
from services.common.rpc_tracing import traced_transfer
from services.common.storage import ObjectInfo
from services.internal.v1 import records_pb2, scheduler_pb2

from . import quotas
from .context import SCHEDULER_DEADLINE_SECONDS, GatewayContext, tenant_of
from .listing import page, parse_filter, read_page
from .metrics import UPLOAD
from .parquet_check import ParquetChecker
from .resources import public_dataset

log = logging.getLogger(__name__)


async def _file_chunks(requests: AsyncIterator[datasets_pb2.UploadRequest]) -> AsyncIterator[bytes]:
    """The bytes of an upload after its header."""
    async for message in requests:
        if message.WhichOneof("payload") != "chunk":
            raise errors.invalid_argument(
                "chunk", "every message after the first must carry a chunk of the file"
            )
        yield message.chunk


# What ListDatasets can filter on.
DATASET_FILTERS = {"name": lambda dataset: dataset.name, "sha256": lambda dataset: dataset.sha256}


class DatasetService(datasets_pb2_grpc.DatasetServiceServicer):
    def __init__(self, ctx: GatewayContext):
        self.gw = ctx
        self.transfers = ctx.transfers
        # Undoing of uploads whose call ended before they were kept: tasks
        # of their own (a cancelled call must not stop them), held here.
        self._undoing: set[asyncio.Future] = set()

    @errors.handle_errors
    @traced_transfer("/fityard.v1.DatasetService/Upload")
    async def Upload(self, request_iterator, context):
        # Admitted (or refused) before anything is read: see transfer.py.
        with self.transfers.admit("upload", UPLOAD):
            return await self._upload(request_iterator, context)

    async def _upload(self, request_iterator, context) -> datasets_pb2.UploadResponse:
        """Check the header, stream the file into the store while checking
        it, then keep it: one copy per content, recorded, or nothing."""
        tenant = tenant_of(context)
        header = self._header(await self.transfers.first_message(request_iterator))
        stored = await quotas.stored_bytes(self.gw.datasets, tenant)
        quotas.check_stored_bytes(self.gw.config, tenant, stored, header.size_bytes)
        dataset_id, created = new_record_id(DATASETS.id_prefix)
        trace.get_current_span().set_attribute("fityard.dataset.id", dataset_id)
        key = dataset_key(tenant, dataset_id)
        checker = ParquetChecker(
            expected_size=header.size_bytes,
            expected_sha256=header.sha256,
            max_bytes=self.gw.config.max_upload_bytes,
        )
        info = await self.transfers.receive(
            key, _file_chunks(request_iterator), checker.feed, checker.finish
        )
        try:
            await self._client_still_there(context)
            return await self._keep(tenant, header, checker, info, dataset_id, created, stored)
        except BaseException as exc:
            # Refused, failed, or cut at any await from here on (the cut of
            # an over-limit message can land after the check above): the
            # client was not told of a dataset, so none may stay.
            undo = asyncio.ensure_future(self._drop_upload(tenant, dataset_id, key, info.sha256))
            self._undoing.add(undo)
            undo.add_done_callback(self._undoing.discard)
            if not isinstance(exc, asyncio.CancelledError):
                await asyncio.shield(undo)  # done before the caller hears why
            raise

    async def _keep(
        self,
        tenant: str,
        header: datasets_pb2.UploadHeader,
        checker: ParquetChecker,
        info: ObjectInfo,
        dataset_id: str,
        created: Timestamp,
        stored: int,
    ) -> datasets_pb2.UploadResponse:
        """Keep the stored file as a new dataset (`stored`: the tenant's
        bytes before it), or answer with the dataset that holds these bytes
        already (the file then goes). Whatever raises, _upload undoes."""
        key = dataset_key(tenant, dataset_id)
        existing = await self.gw.digests.find(tenant, info.sha256)
        if existing is not None:  # these bytes are stored already: keep one copy
            await asyncio.to_thread(self.gw.store.delete, key)
            log.info(
                "upload of %s is dataset %s already: not stored twice", header.name, existing.id
            )
            return datasets_pb2.UploadResponse(dataset=public_dataset(existing))
        quotas.check_shape(self.gw.config, tenant, checker.rows, len(checker.columns))
        quotas.check_stored_bytes(self.gw.config, tenant, stored, info.size)
        record = records_pb2.DatasetRecord(
            id=dataset_id,
            name=header.name,
            size_bytes=info.size,
            sha256=info.sha256,
            rows=checker.rows,
            columns=checker.columns,
            create_time=created,
            tenant=tenant,
        )
        return datasets_pb2.UploadResponse(dataset=public_dataset(await self._record(record, key)))

    async def _drop_upload(self, tenant: str, dataset_id: str, key: str, sha256: str) -> None:
        """Undo a received upload the client was not told of: its digest
        entry (if it names this dataset), its record (if made) and its file.
        Runs as a task of its own, so a cancelled call cannot stop it
        half-way; each step is a no-op if there is nothing to undo."""
        try:
            await self.gw.digests.forget(tenant, sha256, dataset_id)
            if await get_record(self.gw.datasets, tenant, dataset_id, records_pb2.DatasetRecord):
                await self.gw.datasets.delete(record_key(tenant, dataset_id))
        except Exception as exc:  # noqa: BLE001 - the file goes regardless
            log.warning("could not undo the record of upload %s: %s", dataset_id, exc)
        finally:
            await asyncio.to_thread(self.gw.store.delete, key)

    async def _client_still_there(self, context) -> None:
        """Raise if the client is gone. gRPC ends the request stream the
        same way when it drops a message over the size limit
        (fityard.limits.MAX_MESSAGE_BYTES; the client is told
        RESOURCE_EXHAUSTED) as when the client has sent everything; an
        operation on the call tells them apart."""
        await context.send_initial_metadata(())

    def _header(self, first: datasets_pb2.UploadRequest | None) -> datasets_pb2.UploadHeader:
        """The upload's header, checked before any of the file is read."""
        if first is None or first.WhichOneof("payload") != "header":
            raise errors.invalid_argument(
                "header",
                "the first message must carry the header (name, optional size_bytes and sha256); chunks follow",
            )
        header = first.header
        if not header.name:
            raise errors.invalid_argument(
                "header.name", "is required, e.g. the file name 'train.parquet'"
            )
        if header.size_bytes < 0 or header.size_bytes > self.gw.config.max_upload_bytes:
            raise errors.invalid_argument(
                "header.size_bytes",
                f"{header.size_bytes} is outside 0..{self.gw.config.max_upload_bytes} (FITYARD_MAX_UPLOAD_BYTES)",
            )
        return header

    async def _record(
        self, record: records_pb2.DatasetRecord, key: str
    ) -> records_pb2.DatasetRecord:
        """Record the stored file as a dataset; the dataset that counts (an
        upload of the same bytes at the same moment may have won)."""
        tenant, dataset_id = record.tenant, record.id
        await self.gw.datasets.create(record_key(tenant, dataset_id), encode(record))
        winner = await self.gw.digests.claim(tenant, record.sha256, dataset_id)
        if winner is not None:  # the same bytes were uploaded at the same time
            await self.gw.datasets.delete(record_key(tenant, dataset_id))
            await asyncio.to_thread(self.gw.store.delete, key)
            return await self.gw.dataset_record(tenant, winner)
        log.info(
            "stored dataset %s (%s, %d bytes, %d rows)",
            dataset_id,
            record.name,
            record.size_bytes,
            record.rows,
        )
        return record

    @errors.handle_errors
    async def GetDataset(self, request, context):
        record = await self.gw.dataset_record(tenant_of(context), request.dataset_id)
        return datasets_pb2.GetDatasetResponse(dataset=public_dataset(record))

    @errors.handle_errors
    @traced_transfer("/fityard.v1.DatasetService/DownloadDataset")
    async def DownloadDataset(self, request, context):
        tenant = tenant_of(context)
        dataset = public_dataset(await self.gw.dataset_record(tenant, request.dataset_id))
        await self.transfers.send(
            context,
            dataset_key(tenant, dataset.id),
            DATASETS.name(dataset.id),
            lambda info: datasets_pb2.DownloadDatasetResponse(dataset=dataset),
            lambda chunk: datasets_pb2.DownloadDatasetResponse(chunk=chunk),
        )

    @errors.handle_errors
    async def DeleteDataset(self, request, context):
        errors.check_id("dataset_id", request.dataset_id, DATASETS)
        await self.gw.scheduler.DeleteDataset(
            scheduler_pb2.DeleteDatasetRequest(
                tenant=tenant_of(context), dataset_id=request.dataset_id
            ),
            timeout=SCHEDULER_DEADLINE_SECONDS,
            wait_for_ready=True,  # deleting twice: the second says NOT_FOUND
        )
        return datasets_pb2.DeleteDatasetResponse()

    @errors.handle_errors
    async def ListDatasets(self, request, context):
        tenant = tenant_of(context)
        terms = dict(parse_filter(request.filter, DATASET_FILTERS))
        if "sha256" in terms:  # at most one dataset has those bytes: the index knows it
            found = await self.gw.digests.find(tenant, check_sha256("filter", terms["sha256"]))
            records = [found] if found else []
            items, token = page(
                records, request.page_size, request.page_token, request.filter, DATASET_FILTERS
            )
        else:
            items, token = await read_page(
                self.gw.datasets,
                tenant,
                records_pb2.DatasetRecord,
                request.page_size,
                request.page_token,
                request.filter,
                DATASET_FILTERS,
            )
        return datasets_pb2.ListDatasetsResponse(
            datasets=[public_dataset(r) for r in items], next_page_token=token
        )
