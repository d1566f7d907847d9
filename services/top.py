"""`fityard top`: what the stack is doing, refreshed in the terminal, for
operators (what `rq info -i 1` and `ray status` give their users).

It reads NATS directly, like those tools read Redis or Ray's control store:
- the queue of each lane: the trainers' JetStream consumer (jobs waiting,
  jobs held by a trainer, of those redelivered);
- the trainers: their own status in the fityard_trainers bucket
  (services/trainer/status.py): idle, waiting for a core or busy, with
  which job and cores;
- running jobs and recent failures: the job records of the trainers' jobs,
  and the most recently written records (the last RECENT_RECORDS messages
  of the bucket's stream, so a refresh costs the same with ten jobs or ten
  million; a failure older than that many record writes drops off).

Where NATS is: --nats, else the `nats_url` a running `fityard up` wrote to
<data dir>/stack.json, else FITYARD_NATS_URL, else nats://127.0.0.1:4222.
Plain text (no dependency), redrawn in place on a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.common import bus
from services.common.config import SCHEMA
from services.common.jobs import kind_name, state_name
from services.common.records import get_record
from services.internal.v1 import records_pb2

RECENT_RECORDS = 200
FAILURES_SHOWN = 10
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
RUNNING = "RUNNING"


@dataclass
class Lane:
    name: str
    waiting: int
    held: int
    redelivered: int


@dataclass
class Snapshot:
    """What one refresh shows."""

    lanes: list[Lane] = field(default_factory=list)
    trainers: list[records_pb2.TrainerStatus] = field(default_factory=list)
    running: list[records_pb2.JobRecord] = field(default_factory=list)
    failures: list[records_pb2.JobRecord] = field(default_factory=list)


# -- where NATS is -------------------------------------------------------------


def nats_url(given: str | None, data_dir: str | Path) -> tuple[str, str]:
    """(the URL, where it came from)."""
    if given:
        return given, "--nats"
    stack_file = Path(data_dir) / "stack.json"
    try:
        return json.loads(stack_file.read_text())["nats_url"], str(stack_file)
    except (OSError, ValueError, KeyError):
        pass
    variable = SCHEMA.env("nats_url")
    if os.environ.get(variable):
        return os.environ[variable], variable
    return DEFAULT_NATS_URL, "the default"


# -- reading --------------------------------------------------------------------


async def take_snapshot(js: JetStreamContext) -> Snapshot:
    snap = Snapshot()
    for lane, consumer in bus.LANE_CONSUMERS.items():
        try:
            info = await js.consumer_info(bus.JOBS_STREAM, consumer)
        except NotFoundError:
            continue
        snap.lanes.append(
            Lane(lane, info.num_pending or 0, info.num_ack_pending or 0, info.num_redelivered or 0)
        )
    snap.trainers = await _trainers(js)
    jobs = await bus.jobs_bucket(js)
    recent = await _recent_records(js, jobs)
    running = {r.id: r for r in recent if state_name(r.state) == RUNNING}
    for status in snap.trainers:
        if status.job_id and status.job_id not in running:
            found = await get_record(jobs, status.tenant, status.job_id, records_pb2.JobRecord)
            if found is not None and state_name(found[0].state) == RUNNING:
                running[status.job_id] = found[0]
    snap.running = sorted(running.values(), key=lambda r: r.start_time.ToNanoseconds())
    failed = [r for r in recent if state_name(r.state) == "FAILED"]
    failed.sort(key=lambda r: r.end_time.ToNanoseconds(), reverse=True)
    snap.failures = failed[:FAILURES_SHOWN]
    return snap


async def _trainers(js: JetStreamContext) -> list[records_pb2.TrainerStatus]:
    trainers = await bus.trainers_bucket(js)
    try:
        keys = await trainers.keys()
    except Exception:  # noqa: BLE001 - nats-py raises NoKeysError (or others) for an empty bucket
        return []
    found = []
    for key in sorted(keys):
        with contextlib.suppress(Exception):  # expired between keys() and get()
            entry = await trainers.get(key)
            if entry.value:
                found.append(records_pb2.TrainerStatus.FromString(entry.value))
    return found


async def _recent_records(js: JetStreamContext, jobs) -> list[records_pb2.JobRecord]:
    """The records written last: the newest messages of the bucket's stream
    (a record rewritten since has left its older message behind: skipped)."""
    stream = f"KV_{bus.JOBS_BUCKET}"
    info = await js.stream_info(stream)
    last, first = info.state.last_seq, info.state.first_seq
    sequences = range(max(first, last - RECENT_RECORDS + 1), last + 1)
    limit = asyncio.Semaphore(32)

    async def read(seq: int) -> records_pb2.JobRecord | None:
        async with limit:
            try:
                msg = await js.get_msg(stream, seq)
            except Exception:  # noqa: BLE001 - purged (rewritten or deleted) since
                return None
        if not msg.data:
            return None
        return records_pb2.JobRecord.FromString(msg.data)

    records = await asyncio.gather(*(read(seq) for seq in sequences))
    return [r for r in records if r is not None]


# -- showing --------------------------------------------------------------------


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _since(timestamp, now: float) -> str:
    return _ago(now - timestamp.ToNanoseconds() / 1e9) if timestamp.seconds else "-"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render(snap: Snapshot, now: float, where: str = "") -> list[str]:
    """The lines of one refresh (pure: tests call it with a made-up snapshot)."""
    lines = [f"fityard top{(' - ' + where) if where else ''} - {time.strftime('%H:%M:%S')}", ""]
    lines.append(f"{'QUEUE':<12}{'waiting':>9}{'held':>7}{'redelivered':>13}")
    for lane in snap.lanes or [Lane("(none)", 0, 0, 0)]:
        lines.append(f"{lane.name:<12}{lane.waiting:>9}{lane.held:>7}{lane.redelivered:>13}")
    counts = ", ".join(
        f"{sum(t.state == state for t in snap.trainers)} {state}"
        for state in ("busy", "waiting", "idle")
    )
    lines += ["", f"TRAINERS ({len(snap.trainers)}: {counts})"]
    for t in snap.trainers:
        job = {"busy": f"{t.job_id} {t.cores} core(s)", "waiting": f"{t.job_id} for a core"}.get(
            t.state, ""
        )
        lines.append(
            f"  {t.trainer_id:<24} {t.state:<5} {job:<40} for {_since(t.state_time, now)}"
            f"  (up to {t.threads} threads, {t.host} pid {t.pid})"
        )
    live = {t.trainer_id for t in snap.trainers}
    lines += ["", f"RUNNING ({len(snap.running)})"]
    for r in snap.running:
        gone = "" if r.trainer_id in live else " (trainer gone: redelivered after the ack deadline)"
        lines.append(
            f"  {r.id}  {kind_name(r.kind):<7} {r.progress:>4.0%}  {r.trainer_id or '-'}"
            f"  {r.cores} core(s)  running {_since(r.start_time, now)}"
            f"  attempt {r.attempts}  {_short(r.progress_message, 40)}{gone}"
        )
    lines += [
        "",
        f"RECENT FAILURES ({len(snap.failures)}, among the last {RECENT_RECORDS} records)",
    ]
    for r in snap.failures:
        lines.append(
            f"  {r.id}  {kind_name(r.kind):<7} {_since(r.end_time, now)} ago  {_short(r.error, 100)}"
        )
    return lines


# -- the command ------------------------------------------------------------------


async def _run(url: str, source: str, once: bool, interval: float) -> int:
    async def quiet(_exc: Exception) -> None:  # the failure is said once, below
        pass

    try:
        # One try (nats-py: 1; with 0 or allow_reconnect=False a refused
        # first connect hangs), bounded all the same.
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=3,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=quiet,
                # the token: in the URL (stack.json's) or FITYARD_NATS_TOKEN
                token=os.environ.get(SCHEMA.env("nats_token")) or None,
            ),
            10,
        )
    except Exception as exc:  # noqa: BLE001 - said in one line, with what to do
        print(
            f"error: cannot reach NATS at {bus.redacted(url)} (from {source}): {exc or type(exc).__name__}. "
            "Start the stack (`fityard up`), pass --data-dir of a running `fityard up`, "
            "or --nats URL / FITYARD_NATS_URL.",
            file=sys.stderr,
        )
        return 1
    js = nc.jetstream()
    redraw = sys.stdout.isatty() and not once
    try:
        while True:
            lines = render(await take_snapshot(js), time.time(), url)
            if redraw:
                sys.stdout.write("\x1b[H\x1b[2J")
            print("\n".join(lines), flush=True)
            if once:
                return 0
            await asyncio.sleep(interval)
            if not redraw:
                print(flush=True)
    finally:
        await nc.close()


def main(nats_given: str | None, data_dir: str, once: bool, interval: float) -> int:
    url, source = nats_url(nats_given, data_dir)
    try:
        return asyncio.run(_run(url, source, once, interval))
    except KeyboardInterrupt:
        return 0
