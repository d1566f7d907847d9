"""Reliability soak: `python -m bench soak [--jobs 500] [--kill-every 5]`.

A supervised embedded stack (what `fityard up` runs: a child that dies is
restarted with backoff) with a short ack deadline takes N jobs, mixed fits
and predicts on small data, some bad on purpose (a fit on a file without
`y`, a predict on a file without `col_0`: both must FAIL saying so),
submitted over time by a few client threads. Meanwhile a chaos loop
SIGKILLs a random trainer or the scheduler every few seconds (a trainer
when it is running a job, a moment into it; only processes up for 10 s, so
the supervisor's crash-loop backoff, which leaves a child down up to 30 s,
does not build up: --min-uptime 0 --anytime to kill blindly).

When every job is submitted the chaos stops, and every job must reach a
terminal state within a deadline. The report counts jobs submitted,
succeeded, failed as expected, failed because they were killed too often
(FITYARD_MAX_ATTEMPTS deaths of the process running them: legitimate, set
high for the soak so it is rare), failed unexpectedly, lost (not terminal
by the deadline), and with more than one output in the store; and, for each
kill of a trainer that was running a job, the delay until that job was
running again (from the trainers' logs: the killed process's last
"running ... job" line, then the job's next attempt on any trainer).
Also reported, and failed on only with --strict: jobs started again after
a run had already ended them (a second execution; it writes the same
attempt's key, so it shows as no second output), and, for information,
jobs whose runs in the logs do not match the attempts in their record.

Exit status 1 if any job was lost, duplicated or failed unexpectedly (or a
submit was refused); the data directory (logs included) is then kept and
its path printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from fityard import Client, FityardError, JobFailed, JobTimeout
from ml.data import make_data
from services.common.config import SCHEMA
from services.embedded import RESTART_RESET_AFTER, EmbeddedStack
from tools.faults import fault_env, stored_outputs

from .measure import percentile

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
# The message of a job whose runs died FITYARD_MAX_ATTEMPTS times
# (services/scheduler/attempts.py, _give_up).
KILLED_TOO_OFTEN = re.compile(r"stopped \d+ time\(s\) by the death of the process")
# What the bad jobs must fail with (ml/checks.py). Their data passes
# admission (its schema is fine) and fails in the trainer on its values:
# one class in y; text in a feature trained on numbers.
EXPECTED_ERRORS = {
    "bad-fit": "at least two classes in 'y'",
    "bad-predict": "holding other values than the model was trained on",
}
# Job mix: kind -> weight.
MIX = {"fit": 0.45, "predict": 0.35, "bad-fit": 0.10, "bad-predict": 0.10}

# Trainer log lines (services/common/runtime.py: "%(asctime)s trainer ...").
_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_RUNNING = re.compile(_STAMP + r" .*running (\w+) job (\S+) \(attempt (\d+)")
_ENDED = re.compile(_STAMP + r" .*job (\S+) (?:succeeded in|failed: )")
_RESTART = re.compile(r"^---- fityard: restart (\d+) of (\S+) ----$")


def _stamp(text: str) -> float:
    """A log time (local, as logging writes it) as a Unix time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class Kill:
    target: str
    pid: int
    process_index: int  # which process of `target` (0: the first, n: after restart n)
    at: float  # time.time() just before the signal
    # For trainers, filled in from the logs after the run:
    job_id: str = ""  # the job it was running, if any
    attempt: int = 0
    rerun_attempt: int = 0
    rerun_trainer: str = ""
    rerun_delay: float | None = None  # seconds from the kill to the job's next "running" line
    outcome: str = ""  # rerun | no job running | ended by the killed attempt | given up | NOT RERUN


@dataclass
class Tracked:
    job_id: str
    kind: str  # one of MIX
    submitted_at: float
    client: int


@dataclass
class Soak:
    """Shared state of one soak run."""

    args: argparse.Namespace
    stack: EmbeddedStack
    datasets: dict[str, str]
    models: list[str]
    tracked: list[Tracked] = field(default_factory=list)
    submit_errors: list[str] = field(default_factory=list)
    wait_errors: list[str] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    stack_events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tickets: int = 0
    clients_started: float = 0.0  # time.monotonic() when the clients started


def say(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)


# -- the clients ------------------------------------------------------------------


def _next_ticket(soak: Soak) -> bool:
    """Take the right to submit one more job (False once all are taken);
    with --rate, wait for that job's turn."""
    with soak.lock:
        if soak.tickets >= soak.args.jobs:
            return False
        soak.tickets += 1
        due = soak.clients_started + (soak.tickets - 1) / soak.args.rate if soak.args.rate else 0.0
    time.sleep(max(0.0, due - time.monotonic()))
    return True


def _submit(soak: Soak, client: Client, kind: str, rng: random.Random):
    d = soak.datasets
    if kind in ("fit", "bad-fit"):
        dataset = d["train"] if kind == "fit" else d["one_class_train"]
        return client.fit(
            dataset, max_iter=rng.randint(10, 200), learning_rate=rng.choice([0.05, 0.1, 0.2])
        )
    with soak.lock:
        model = rng.choice(soak.models)
    return client.predict(model, d["test"] if kind == "predict" else d["text_test"])


def _wait(soak: Soak, job, kind: str) -> None:
    """Wait for one of this client's jobs (pacing only: outcomes are read
    from the records at the end). A good fit's model joins the pool."""
    try:
        job.wait(timeout=soak.args.wait_timeout)
    except (JobFailed, JobTimeout):
        return
    except FityardError as exc:  # the watch itself failed: noted, the record decides
        with soak.lock:
            soak.wait_errors.append(f"{job.id}: {exc}")
        return
    if kind == "fit" and job.state == "SUCCEEDED":
        with soak.lock:
            soak.models.append(job.id)


def _soak_data(directory: Path, rows: int, seed: int) -> dict[str, Path]:
    """The seed files, and the bad ones that fail in the trainer (the seed's
    BAD files are refused at submission now, before any trainer)."""
    import pandas as pd

    files = make_data(directory, rows=rows, seed=seed)
    files["one_class_train"] = directory / "one_class_train.parquet"
    pd.read_parquet(files["train"]).assign(y=0).to_parquet(files["one_class_train"], index=False)
    files["text_test"] = directory / "text_test.parquet"
    pd.read_parquet(files["test"]).assign(col_0="text").to_parquet(files["text_test"], index=False)
    return files


def client_loop(soak: Soak, index: int, window: int) -> None:
    rng = random.Random(f"{soak.args.seed}-client-{index}")
    kinds, weights = list(MIX), list(MIX.values())
    outstanding: deque = deque()
    with Client(soak.stack.address) as client:
        while _next_ticket(soak):
            kind = rng.choices(kinds, weights)[0]
            before = time.time()
            try:
                job = _submit(soak, client, kind, rng)
            except FityardError as exc:
                with soak.lock:
                    soak.submit_errors.append(
                        f"{kind} submitted at {before:.3f} (+{time.time() - before:.1f} s): {exc}"
                    )
                continue
            with soak.lock:
                soak.tracked.append(Tracked(job.id, kind, time.time(), index))
            outstanding.append((job, kind))
            if len(outstanding) >= window:
                _wait(soak, *outstanding.popleft())
            time.sleep(rng.uniform(0, soak.args.think))


# -- the chaos ----------------------------------------------------------------------


def process_age(pid: int) -> float:
    """Seconds since process `pid` started (Linux /proc), 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def chaos_loop(soak: Soak, stop: threading.Event, started: float) -> None:
    """Every kill_every seconds (times 0.5-1.5), SIGKILL a random trainer or
    the scheduler among those up for at least min_uptime seconds (if none
    is, the first that gets there)."""
    rng = random.Random(f"{soak.args.seed}-chaos")
    stack = soak.stack
    next_kill = time.monotonic() + soak.args.kill_every * rng.uniform(0.5, 1.5)
    while not stop.wait(0.1):
        if time.monotonic() < next_kill:
            continue
        targets = [n for n in stack.names() if n.startswith("trainer-") or n == "scheduler"]
        procs = {n: stack.process(n) for n in targets}
        ready = [
            n
            for n, p in procs.items()
            if p.poll() is None and process_age(p.pid) >= soak.args.min_uptime
        ]
        if not ready:
            continue
        name = rng.choice(ready)
        if name.startswith("trainer-") and not soak.args.anytime:
            # Catch it running a job (an idle trainer's death tests little),
            # a moment into it; kill it anyway if none comes soon.
            give_up = time.monotonic() + max(soak.args.kill_every, 5.0)
            while time.monotonic() < give_up and not stop.is_set():
                job = current_job(stack, name)
                if job is None:
                    stop.wait(0.05)
                elif not stop.wait(rng.uniform(0, 0.3)) and current_job(stack, name) == job:
                    break
            if stop.is_set():
                break
        proc, index = procs[name], stack.restarts(name)
        if proc is not stack.process(name) or proc.poll() is not None:
            continue  # restarted or died meanwhile: choose again
        at = time.time()
        proc.send_signal(signal.SIGKILL)
        soak.kills.append(Kill(name, proc.pid, index, at))
        next_kill = time.monotonic() + soak.args.kill_every * rng.uniform(0.5, 1.5)
        say(started, f"chaos: SIGKILL {name} (pid {proc.pid}); {len(soak.kills)} kill(s) so far")


# -- reading the trainers' logs -----------------------------------------------------------


def _trainer_logs(stack: EmbeddedStack) -> dict[str, dict[int, list[str]]]:
    """Each trainer's log lines, split by process: {trainer: {process index: lines}}."""
    logs: dict[str, dict[int, list[str]]] = {}
    for name in stack.names():
        if not name.startswith("trainer-"):
            continue
        path = stack.log_dir / f"{name}.log"
        segments: dict[int, list[str]] = {0: []}
        index = 0
        for line in (path.read_text(errors="replace") if path.exists() else "").splitlines():
            restart = _RESTART.match(line)
            if restart:
                index = int(restart.group(1))
                segments[index] = []
            else:
                segments[index].append(line)
        logs[name] = segments
    return logs


def _runs(logs: dict[str, dict[int, list[str]]]) -> dict[str, list[tuple[int, float, str]]]:
    """{job id: [(attempt, start time, trainer), ...]} from every "running" line."""
    found: dict[str, list[tuple[int, float, str]]] = {}
    for trainer, segments in logs.items():
        for lines in segments.values():
            for line in lines:
                m = _RUNNING.match(line)
                if m:
                    found.setdefault(m.group(3), []).append(
                        (int(m.group(4)), _stamp(m.group(1)), trainer)
                    )
    for runs in found.values():
        runs.sort()
    return found


def current_job(stack: EmbeddedStack, trainer: str) -> tuple[str, int] | None:
    """The job (id, attempt) the trainer's current process is running, per its log."""
    path = stack.log_dir / f"{trainer}.log"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return _running_at_death(
        text[text.rfind("---- fityard: restart") :].splitlines()
        if "---- fityard" in text
        else text.splitlines()
    )


def _running_at_death(lines: list[str]) -> tuple[str, int] | None:
    """The job (id, attempt) a trainer process was running when it died: its
    last "running" line, if no later line of it mentions that job (the
    success, failure, retry or hand-back lines all name it)."""
    for i in range(len(lines) - 1, -1, -1):
        m = _RUNNING.match(lines[i])
        if m:
            job_id = m.group(3)
            if any(job_id in later for later in lines[i + 1 :]):
                return None
            return job_id, int(m.group(4))
    return None


def _ends(logs: dict[str, dict[int, list[str]]]) -> dict[str, list[tuple[float, str]]]:
    """{job id: [(time, trainer), ...]} of the lines saying a run ended the
    job (succeeded, or failed for good)."""
    found: dict[str, list[tuple[float, str]]] = {}
    for trainer, segments in logs.items():
        for lines in segments.values():
            for line in lines:
                m = _ENDED.match(line)
                if m:
                    found.setdefault(m.group(2), []).append((_stamp(m.group(1)), trainer))
    for ends in found.values():
        ends.sort()
    return found


def runs_after_end(logs: dict[str, dict[int, list[str]]], runs: dict) -> dict[str, dict]:
    """Jobs started again after a run had ended them: executed twice."""
    found = {}
    for job_id, ends in _ends(logs).items():
        first_end, ender = ends[0]
        again = [
            (attempt, trainer, round(t - first_end, 3))
            for attempt, t, trainer in runs.get(job_id, [])
            if t > first_end
        ]
        if again:
            found[job_id] = {
                "ended_at": first_end,
                "ended_on": ender,
                "started_again (attempt, trainer, s after)": again,
            }
    return found


def analyse_kills(soak: Soak, records: dict) -> tuple[dict, dict]:
    """Fill in each trainer kill's job and rerun from the logs; return the
    trainers' logs and the runs found there ({job id: [(attempt, start
    time, trainer), ...]})."""
    logs = _trainer_logs(soak.stack)
    runs = _runs(logs)
    for kill in soak.kills:
        if not kill.target.startswith("trainer-"):
            kill.outcome = "scheduler"
            continue
        running = _running_at_death(logs.get(kill.target, {}).get(kill.process_index, []))
        if running is None:
            kill.outcome = "no job running"
            continue
        kill.job_id, kill.attempt = running
        # The job's next run: a later attempt, or the same number started
        # after the kill (if the killed run's RUNNING report never got out,
        # the record did not count it).
        later = [r for r in runs.get(kill.job_id, []) if r[0] > kill.attempt or r[1] > kill.at]
        later.sort(key=lambda r: r[1])
        record = records.get(kill.job_id)
        if later:
            kill.rerun_attempt, started, kill.rerun_trainer = later[0]
            kill.rerun_delay = started - kill.at
            # A negative delay: a newer attempt had started before the kill
            # (the killed one had lost its heartbeat); still counted.
            kill.outcome = "rerun"
        elif (
            record is not None
            and record.state == "FAILED"
            and KILLED_TOO_OFTEN.search(record.error)
        ):
            kill.outcome = "given up (killed too often)"
        elif record is not None and record.state in TERMINAL and record.attempts == kill.attempt:
            # Its result was reported just before the kill landed.
            kill.outcome = "ended by the killed attempt"
        else:
            kill.outcome = "NOT RERUN"
    return logs, runs


# -- the run ---------------------------------------------------------------------------------


def _classify(tracked: Tracked, record) -> str:
    if record is None or record.state not in TERMINAL:
        return "lost"
    bad = tracked.kind.startswith("bad-")
    if record.state == "SUCCEEDED":
        return "failed unexpectedly" if bad else "succeeded"
    if record.state == "FAILED" and KILLED_TOO_OFTEN.search(record.error):
        return "failed: killed too often"
    if record.state == "FAILED" and bad and EXPECTED_ERRORS[tracked.kind] in record.error:
        return "failed as expected"
    return "failed unexpectedly"


def _summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "max": None}
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def _records(client: Client, ids: set[str]) -> dict:
    return {job.id: job for job in client.jobs() if job.id in ids}


def _duplicates(soak: Soak, records: dict, settle_seconds: float) -> dict[str, list[str]]:
    """Jobs with more than one output in the store, after giving the
    scheduler's janitor (which removes the outputs of attempts that do not
    count, beside event folding) `settle_seconds` to finish."""
    deadline = time.monotonic() + settle_seconds
    candidates = list(records.values())
    while True:
        found = {
            job.id: keys for job in candidates if len(keys := stored_outputs(soak.stack, job)) > 1
        }
        if not found or time.monotonic() > deadline:
            return found
        candidates = [records[i] for i in found]
        time.sleep(1.0)


def run(args: argparse.Namespace, data_dir: Path) -> dict:
    started = time.monotonic()
    wall_started = time.time()
    say(
        started,
        f"soak: {args.jobs} jobs, {args.clients} clients, {args.trainers} trainers, a kill every "
        f"~{args.kill_every:g} s, ack deadline {args.ack_wait:g} s, FITYARD_MAX_ATTEMPTS={args.max_attempts}; "
        f"data and logs in {data_dir}",
    )
    files = _soak_data(data_dir / "data", args.rows, args.seed)
    env = fault_env(
        data_dir,
        **SCHEMA.to_env({"ack_wait_seconds": args.ack_wait, "max_attempts": args.max_attempts}),
    )
    events: list[str] = []

    def report(message: str) -> None:
        events.append(f"{time.time():.3f} {message}")

    stack = EmbeddedStack(
        data_dir / "stack", trainers=args.trainers, env=env, supervise=True, report=report
    ).start()
    try:
        with Client(stack.address) as client:
            datasets = {
                role: client.upload(path, progress=False).id for role, path in files.items()
            }
            say(started, "stack up, data uploaded; fitting the first model")
            base = client.fit(datasets["train"], max_iter=20).wait(timeout=120)
            soak = Soak(args, stack, datasets, [base.id], stack_events=events)

            stop_chaos = threading.Event()
            chaos = threading.Thread(
                target=chaos_loop, args=(soak, stop_chaos, started), name="chaos", daemon=True
            )
            clients = [
                threading.Thread(
                    target=client_loop, args=(soak, i, args.window), name=f"client-{i}", daemon=True
                )
                for i in range(args.clients)
            ]
            chaos_started = time.time()
            soak.clients_started = time.monotonic()
            chaos.start()
            for t in clients:
                t.start()
            last_note = time.monotonic()
            while any(t.is_alive() for t in clients):
                for t in clients:
                    t.join(1.0)
                if time.monotonic() - last_note > 15:
                    last_note = time.monotonic()
                    say(
                        started,
                        f"{len(soak.tracked)}/{args.jobs} submitted, {len(soak.kills)} kill(s)",
                    )
            stop_chaos.set()
            chaos.join()
            chaos_stopped = time.time()
            say(
                started,
                f"all {len(soak.tracked)} jobs submitted; chaos stopped after {len(soak.kills)} kill(s); "
                f"waiting up to {args.drain_timeout:g} s for every job to end",
            )

            deadline = time.monotonic() + args.drain_timeout
            ids = {t.job_id for t in soak.tracked}
            while True:
                try:
                    records = _records(client, ids)
                except FityardError as exc:
                    say(started, f"listing jobs failed ({exc}); trying again")
                    records = {}
                pending = [i for i in ids if i not in records or records[i].state not in TERMINAL]
                if not pending or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            drained = time.time()
            say(
                started,
                f"{len(ids) - len(pending)}/{len(ids)} jobs ended; checking outputs and logs",
            )

            outcomes: dict[str, list[str]] = {}
            for t in soak.tracked:
                outcomes.setdefault(_classify(t, records.get(t.job_id)), []).append(t.job_id)
            duplicates = _duplicates(soak, records, args.settle_outputs)
            without_output = [
                j.id
                for j in records.values()
                if j.state == "SUCCEEDED" and not stored_outputs(stack, j)
            ]
            logs, runs = analyse_kills(soak, records)
            twice = {i: v for i, v in runs_after_end(logs, runs).items() if i in records}
            # Cross-check: each run in the logs is an attempt in the record.
            odd_runs = sorted(
                i for i, job in records.items() if len(runs.get(i, [])) != job.attempts
            )
            restarts = {name: stack.restarts(name) for name in stack.names()}
    finally:
        stack.stop()

    trainer_kills = [k for k in soak.kills if k.target.startswith("trainer-")]
    with_job = [k for k in trainer_kills if k.job_id]
    delays = [k.rerun_delay for k in with_job if k.rerun_delay is not None]
    by_kind = {kind: sum(1 for t in soak.tracked if t.kind == kind) for kind in MIX}
    attempts = [records[i].attempts for i in ids if i in records]
    lost_attempts = [records[i].lost_attempts for i in ids if i in records]

    def jobs_of(name: str) -> list[str]:
        return sorted(outcomes.get(name, []))

    problems = []
    for t in soak.tracked:
        verdict = _classify(t, records.get(t.job_id))
        if (
            verdict in ("lost", "failed unexpectedly")
            or t.job_id in duplicates
            or t.job_id in without_output
        ):
            rec = records.get(t.job_id)
            problems.append(
                {
                    "job_id": t.job_id,
                    "kind": t.kind,
                    "verdict": verdict,
                    "state": rec.state if rec else None,
                    "error": rec.error if rec else None,
                    "attempts": rec.attempts if rec else None,
                    "lost_attempts": rec.lost_attempts if rec else None,
                    "outputs": duplicates.get(t.job_id)
                    or (stored_outputs(stack, rec) if rec else []),
                    "submitted_at": t.submitted_at,
                }
            )

    result = {
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "seconds": time.monotonic() - started,
        "chaos_seconds": chaos_stopped - chaos_started,
        "drain_seconds": drained - chaos_stopped,
        "jobs": {
            "submitted": len(soak.tracked),
            "by_kind": by_kind,
            "succeeded": len(jobs_of("succeeded")),
            "failed_as_expected": len(jobs_of("failed as expected")),
            "failed_killed_too_often": len(jobs_of("failed: killed too often")),
            "failed_unexpectedly": len(jobs_of("failed unexpectedly")),
            "lost": len(jobs_of("lost")),
            "duplicated": len(duplicates),
            "succeeded_without_output": len(without_output),
            "submit_errors": len(soak.submit_errors),
            "retried": sum(1 for a in attempts if a > 1),
            "lost_attempts": sum(lost_attempts),
            "most_attempts": max(attempts, default=0),
            "runs_not_matching_attempts": len(odd_runs),
            "run_again_after_ending": len(twice),
        },
        "job_ids": {
            "failed_killed_too_often": jobs_of("failed: killed too often"),
            "failed_unexpectedly": jobs_of("failed unexpectedly"),
            "lost": jobs_of("lost"),
            "duplicated": sorted(duplicates),
            "succeeded_without_output": sorted(without_output),
            "runs_not_matching_attempts": odd_runs,
            "run_again_after_ending": twice,
        },
        "kills": {
            "total": len(soak.kills),
            "scheduler": sum(1 for k in soak.kills if k.target == "scheduler"),
            "trainer": len(trainer_kills),
            "trainer_running_a_job": len(with_job),
            "outcomes": {
                o: sum(1 for k in soak.kills if k.outcome == o)
                for o in sorted({k.outcome for k in soak.kills})
            },
            "rerun_delay_s": _summary(delays),
            "restarts": restarts,
            "list": [asdict(k) for k in soak.kills],
        },
        "problems": problems,
        "submit_errors": soak.submit_errors,
        "wait_errors": soak.wait_errors,
        "stack_events": events,
        "started_at": wall_started,
    }
    result["passed"] = not (
        result["jobs"]["lost"]
        or result["jobs"]["duplicated"]
        or result["jobs"]["failed_unexpectedly"]
        or result["jobs"]["succeeded_without_output"]
        or result["jobs"]["submit_errors"]
        or (args.strict and result["jobs"]["run_again_after_ending"])
    )
    return result


def render(result: dict) -> str:
    j, k = result["jobs"], result["kills"]
    d = k["rerun_delay_s"]
    delay = (
        "no trainer kill hit a running job"
        if not d["count"]
        else (f"p50 {d['p50']:.2f} s, max {d['max']:.2f} s (over {d['count']} kill(s))")
    )
    s = result["settings"]
    lines = [
        f"soak: {s['jobs']} jobs, {s['clients']} clients, {s['trainers']} trainers, a kill every ~{s['kill_every']:g} s, "
        f"ack deadline {s['ack_wait']:g} s, FITYARD_MAX_ATTEMPTS={s['max_attempts']}",
        f"  took {result['seconds']:.0f} s (chaos {result['chaos_seconds']:.0f} s, drain {result['drain_seconds']:.1f} s)",
        f"  jobs submitted                 {j['submitted']:6d}   ({', '.join(f'{n} {c}' for n, c in j['by_kind'].items())})",
        f"  succeeded                      {j['succeeded']:6d}",
        f"  failed as expected             {j['failed_as_expected']:6d}",
        f"  failed: killed too often       {j['failed_killed_too_often']:6d}",
        f"  failed unexpectedly            {j['failed_unexpectedly']:6d}   (must be 0)",
        f"  lost                           {j['lost']:6d}   (must be 0)",
        f"  more than one output           {j['duplicated']:6d}   (must be 0)",
        f"  succeeded without an output    {j['succeeded_without_output']:6d}   (must be 0)",
        f"  submits refused                {j['submit_errors']:6d}   (must be 0)",
        f"  jobs run more than once        {j['retried']:6d}   ({j['lost_attempts']} attempt(s) lost, most attempts {j['most_attempts']})",
        f"  runs in logs != attempts       {j['runs_not_matching_attempts']:6d}   (informational)",
        f"  run again after it had ended   {j['run_again_after_ending']:6d}   (executed twice; "
        f"{'must be 0: --strict' if s['strict'] else 'reported only, --strict fails on it'})",
        f"  kills                          {k['total']:6d}   (scheduler {k['scheduler']}, trainers {k['trainer']}, "
        f"of which {k['trainer_running_a_job']} running a job)",
        f"  kill outcomes                  {', '.join(f'{o}: {c}' for o, c in k['outcomes'].items()) or '-'}",
        f"  kill -> killed job running again: {delay}",
    ]
    for p in result["problems"][:20]:
        lines.append(
            f"  PROBLEM {p['job_id']} ({p['kind']}): {p['verdict']}, state {p['state']}, "
            f"attempts {p['attempts']}, lost {p['lost_attempts']}, outputs {p['outputs']}, error {p['error']!r}"
        )
    for kill in k["list"]:
        if kill["outcome"] == "NOT RERUN":
            lines.append(
                f"  PROBLEM kill of {kill['target']} at {kill['at']:.3f}: job {kill['job_id']} "
                f"attempt {kill['attempt']} not run again"
            )
    for job_id, how in list(result["job_ids"]["run_again_after_ending"].items())[:10]:
        lines.append(
            f"  WARNING {job_id} ended on {how['ended_on']} at {datetime.fromtimestamp(how['ended_at'])}, "
            f"then started again: (attempt, trainer, seconds after) {how['started_again (attempt, trainer, s after)']}"
        )
    for error in result["wait_errors"][:5]:
        lines.append(f"  NOTE a client's watch failed (the record decides): {error}")
    for error in result["submit_errors"][:10]:
        lines.append(f"  SUBMIT REFUSED {error}")
    lines.append("  PASSED" if result["passed"] else "  FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=500, help="jobs to submit (default 500)")
    parser.add_argument(
        "--kill-every",
        type=float,
        default=5.0,
        help="mean seconds between kills (each wait is 0.5-1.5 times this; default 5)",
    )
    parser.add_argument(
        "--min-uptime",
        type=float,
        default=RESTART_RESET_AFTER,
        help="kill only processes up for this long (default %(default)g s: the supervisor's "
        "RESTART_RESET_AFTER, so its crash-loop backoff, up to 30 s down, never builds up)",
    )
    parser.add_argument(
        "--anytime",
        action="store_true",
        help="kill a chosen trainer at once, even idle (default: wait up to --kill-every seconds, "
        "at least 5, for it to run a job, and kill it a moment, 0-0.3 s, into it)",
    )
    parser.add_argument("--trainers", type=int, default=2, help="trainers in the stack (default 2)")
    parser.add_argument(
        "--clients", type=int, default=4, help="client threads submitting (default 4)"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=2,
        help="jobs each client has in flight before it waits (default 2)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="submit at most this many jobs a second in all (default: as fast as the clients' windows allow)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.3,
        help="most seconds a client pauses between submits (default 0.3)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=12000,
        help="rows of the generated data (75 %% to train on), 50 features (default 12000)",
    )
    parser.add_argument(
        "--ack-wait", type=float, default=3.0, help="FITYARD_ACK_WAIT_SECONDS (default 3)"
    )
    parser.add_argument(
        "--max-attempts", type=int, default=10, help="FITYARD_MAX_ATTEMPTS (default 10)"
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=60.0,
        help="a client's wait for one job (pacing; default 60)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=180.0,
        help="seconds after the chaos stops for every job to end, else it is lost (default 180)",
    )
    parser.add_argument(
        "--settle-outputs",
        type=float,
        default=30.0,
        help="seconds the scheduler gets to remove outputs of attempts that do not count (default 30)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail also if a job was started again after a run had ended it (executed twice)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (job mix, kill targets and timing)"
    )
    parser.add_argument(
        "--data-dir",
        help="keep the stack's data and logs here (default: a temporary directory, "
        "kept only if the soak fails)",
    )
    parser.add_argument("--out", help="write the report as JSON here")
    args = parser.parse_args(argv)
    if (
        args.jobs < 1
        or args.trainers < 1
        or args.clients < 1
        or args.window < 1
        or args.kill_every <= 0
        or args.rate < 0
    ):
        parser.error(
            "--jobs, --trainers, --clients, --window and --kill-every must be positive, --rate not negative"
        )

    keep = args.data_dir is not None
    data_dir = Path(args.data_dir) if keep else Path(tempfile.mkdtemp(prefix="fityard-soak-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir.resolve()
    result = run(args, data_dir)
    result["data_dir"] = str(data_dir)
    print(render(result), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    if result["passed"] and not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    elif not result["passed"]:
        print(f"  data and logs kept in {data_dir}", flush=True)
    return 0 if result["passed"] else 1
