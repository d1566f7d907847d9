"""The fit cache: a fit whose model already exists is not trained again.

A fit with `params.random_state` fixed is deterministic: the same dataset
bytes (their sha256) and the same parameters give the same model. The index
(the fityard_fits KV bucket, `<tenant>.<key>` -> fit job id, the key a hash
of the dataset's digest and the parameters) names the fit that answers
such submits. A new submit finds that fit
- SUCCEEDED: the new job is recorded SUCCEEDED at once, `cached_from`
  naming the fit, its outputs being the fit's (same keys, same attempt);
  nothing is queued;
- QUEUED or RUNNING: the new job is recorded QUEUED with `cached_from`, is
  not queued, and joins the fit's `followers`; when the fit ends its
  followers end the same way (SUCCEEDED with its model, FAILED with its
  error), and if it was cancelled they are queued to train on their own;
- FAILED, CANCELLED or gone: the new job trains and becomes the entry.
`no_cache` on the submit trains anyway (and does not become the entry).

Crash safety: a follower is recorded before it joins the fit's followers.
Reconciliation (reconcile.py) settles a QUEUED follower whose fit has ended
and re-joins one missing from its fit's followers, so a scheduler dying
between the two steps, or before settling the followers of a fit that just
ended, leaves no job waiting forever.
"""

from __future__ import annotations

import hashlib
import logging

from nats.js.errors import KeyNotFoundError

from fityard.v1 import jobs_pb2
from services.common import job_queue
from services.common.jobs import TERMINAL_STATES, output_attempt
from services.common.records import get_record, now
from services.common.resources import JOBS
from services.internal.v1 import records_pb2, scheduler_pb2

from . import metrics
from .context import SchedulerContext
from .store import update_job

log = logging.getLogger(__name__)

# The reason a cached job ended SUCCEEDED (fityard_jobs_ended_total).
CACHED = "cached"


def cacheable(request: scheduler_pb2.SubmitJobRequest) -> bool:
    """A fit whose model is determined by its data and parameters."""
    return (
        request.kind == jobs_pb2.JOB_KIND_FIT
        and request.params.HasField("random_state")
        and not request.no_cache
    )


def cache_key(tenant: str, dataset_sha256: str, params: jobs_pb2.FitParams) -> str:
    """The index key of a fit: its tenant, its data's digest and its
    parameters (as set: an explicit default is another key, which only
    costs a cache miss)."""
    fit = dataset_sha256.encode() + b"|" + params.SerializeToString(deterministic=True)
    return f"{tenant}.{hashlib.sha256(fit).hexdigest()[:40]}"


def _answer_from(job: records_pb2.JobRecord, source: records_pb2.JobRecord) -> None:
    """Make `job` the succeeded fit `source` is, without training."""
    job.state = jobs_pb2.JOB_STATE_SUCCEEDED
    job.cached_from = source.id
    job.output_attempt = output_attempt(source)
    del job.outputs[:]
    job.outputs.extend(source.outputs)
    job.rows = source.rows
    del job.features[:]
    job.features.extend(source.features)
    job.model_sha256 = source.model_sha256
    job.metrics.CopyFrom(source.metrics)
    job.progress = 1.0
    job.progress_message = f"answered from the cache: the model of {JOBS.name(source.id)}"
    job.start_time.CopyFrom(now())
    job.end_time.CopyFrom(job.start_time)


class FitCache:
    def __init__(self, ctx: SchedulerContext):
        self.fits = ctx.fits
        self.jobs = ctx.jobs
        self.js = ctx.js
        self.live = ctx.live

    async def source(self, key: str, tenant: str) -> records_pb2.JobRecord | None:
        """The fit that answers fits of this key, if it can: SUCCEEDED with
        its outputs, or still QUEUED or RUNNING."""
        try:
            entry = await self.fits.get(key)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        found = await get_record(self.jobs, tenant, entry.value.decode(), records_pb2.JobRecord)
        if found is None:
            return None
        fit = found[0]
        usable = fit.state in (jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_RUNNING) or (
            fit.state == jobs_pb2.JOB_STATE_SUCCEEDED and fit.outputs
        )
        return fit if usable else None

    async def remember(self, key: str, job_id: str) -> None:
        """`job_id` answers fits of this key from now on."""
        await self.fits.put(key, job_id.encode())

    def answer(self, job: records_pb2.JobRecord, source: records_pb2.JobRecord) -> None:
        """Fill the new `job` from `source`: succeeded at once, or waiting
        for it."""
        if source.state == jobs_pb2.JOB_STATE_SUCCEEDED:
            _answer_from(job, source)
            return
        job.cached_from = source.id
        job.progress_message = (
            f"waiting for {JOBS.name(source.id)}, the same fit: its model will be this job's"
        )

    async def follow(self, job: records_pb2.JobRecord) -> None:
        """Add the recorded, waiting `job` to its fit's followers; settle it
        at once if the fit has ended meanwhile."""

        def add(fit: records_pb2.JobRecord) -> bool:
            if fit.state in TERMINAL_STATES or job.id in fit.followers:
                return False
            fit.followers.append(job.id)
            return True

        fit = await update_job(self.jobs, job.tenant, job.cached_from, add)
        if fit is None or fit.state in TERMINAL_STATES:
            await self.settle(fit, job.tenant, job.id)

    async def settle_followers(self, fit: records_pb2.JobRecord) -> None:
        """The fit ended: end (or queue) each job waiting for it. A failure
        is logged: reconciliation settles whoever is left (check_waiting)."""
        for follower_id in fit.followers:
            try:
                await self.settle(fit, fit.tenant, follower_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not settle %s after %s ended (%s)", follower_id, fit.id, exc)

    async def check_waiting(self, job: records_pb2.JobRecord) -> None:
        """Reconciliation of a QUEUED job waiting for another fit: settled
        if that fit has ended or is gone, re-joined if it is missing from
        the fit's followers."""
        found = await get_record(self.jobs, job.tenant, job.cached_from, records_pb2.JobRecord)
        fit = found[0] if found else None
        if fit is None or fit.state in TERMINAL_STATES:
            await self.settle(fit, job.tenant, job.id)
        elif job.id not in fit.followers:
            await self.follow(job)

    async def settle(
        self, fit: records_pb2.JobRecord | None, tenant: str, follower_id: str
    ) -> None:
        """End a follower as its ended (or vanished: None) fit did, or, if
        the fit was cancelled or is gone, queue it to train on its own."""
        cached_from = fit.id if fit is not None else ""
        changed: list[bool] = []

        def end(job: records_pb2.JobRecord) -> bool:
            changed[:] = [False]
            if job.state in TERMINAL_STATES or not job.cached_from:
                return False
            if cached_from and job.cached_from != cached_from:
                return False
            if fit is not None and fit.state == jobs_pb2.JOB_STATE_SUCCEEDED:
                _answer_from(job, fit)
            elif fit is not None and fit.state == jobs_pb2.JOB_STATE_FAILED:
                job.state = jobs_pb2.JOB_STATE_FAILED
                job.error = f"the same fit, {JOBS.name(fit.id)}, failed: {fit.error}"
                job.progress_message = "failed"
                job.end_time.CopyFrom(now())
            else:  # cancelled or gone: train it after all
                job.cached_from = ""
                job.progress_message = "waiting for a trainer"
            changed[:] = [True]
            return True

        job = await update_job(self.jobs, tenant, follower_id, end)
        if job is None or not changed[0]:
            return
        if job.state in TERMINAL_STATES:
            self.live.ended(job)
        else:
            self.live.submitted(job)  # on its lane now
        if job.state == jobs_pb2.JOB_STATE_SUCCEEDED:
            metrics.ended(job, CACHED)
        elif job.state == jobs_pb2.JOB_STATE_FAILED:
            metrics.ended(job, CACHED)
        else:
            log.info(
                "%s waited for %s, which did not succeed: queued to train", job.id, cached_from
            )
            await job_queue.publish(self.js, job)
