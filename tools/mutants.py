"""Mutation check: break a core behaviour on purpose and see the suite notice.

`make mutants` (not part of `make test`) copies the checkout to a temp
directory once per mutant, applies one deliberate breakage there, and runs
the tests that guard that behaviour. A mutant the tests still pass against
"survives": the suite would let that bug land. None may survive; the
script exits 1 if one does.

Each mutant is a literal replacement of a snippet that must occur exactly
once (a refactor that moves the snippet makes the script fail loudly, to be
updated along with the code, rather than silently test nothing).

    python tools/mutants.py              # every mutant
    python tools/mutants.py heartbeat    # those whose name contains "heartbeat"
    python tools/mutants.py --list
    python tools/mutants.py --check      # every snippet still applies (no test run)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".fityard", "__pycache__", ".pytest_cache", "bench-results.json"
)


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str  # the behaviour a user would lose
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids that must catch it
    also: tuple[tuple[str, str, str], ...] = ()  # more (path, old, new) replacements


MUTANTS = [
    Mutant(
        "trace-context-not-sent",
        "the job's message carries no trace context: the trainer's work is a trace of its own",
        "services/common/job_queue.py",
        "        headers = with_trace_headers(\n",
        "        headers = (\n",
        ("tests/test_trace_cli.py::test_trace_prints_the_jobs_tree_across_the_services",),
    ),
    Mutant(
        "watch-final-only",
        "WatchJob sends only the final record: no RUNNING, no progress reaches the watcher",
        "services/gateway/jobs.py",
        "                yield jobs_pb2.WatchJobResponse(job=job)\n                if job.state in TERMINAL_STATES:\n                    return",
        "                if job.state in TERMINAL_STATES:\n                    yield jobs_pb2.WatchJobResponse(job=job)\n                    return",
        (
            "tests/test_workflow.py::test_watch_reports_each_state_in_order_until_the_job_ends[local]",
            "tests/test_cli.py::test_watch_follows_a_job_to_the_end[local]",
        ),
    ),
    Mutant(
        "cancel-ignored-by-trainer",
        "a trainer ignores cancels of the job it runs (the notice and the record): the fit goes on",
        "services/trainer/runner.py",
        '            log.info("cancel requested for running job %s", job_id)\n            self._cancel.set()',
        '            log.info("cancel requested for running job %s", job_id)',
        ("tests/test_workflow.py::test_a_running_job_can_be_cancelled_and_its_fit_stops[local]",),
        also=(
            (
                "services/trainer/runner.py",
                '        if record.state in TERMINAL_STATES:\n            log.info("job %s has ended (%s): stopping it"',
                '        if False:\n            log.info("job %s has ended (%s): stopping it"',
            ),
        ),
    ),
    Mutant(
        "cancel-record-ignored",
        "a trainer does not check the record for a cancel while the job runs",
        "services/trainer/runner.py",
        '        if record.state in TERMINAL_STATES:\n            log.info("job %s has ended (%s): stopping it"',
        '        if False:\n            log.info("job %s has ended (%s): stopping it"',
        ("tests/test_faults.py::test_a_cancel_sent_while_no_trainer_listens_still_stops_the_job",),
    ),
    Mutant(
        "cancelled-queued-job-runs",
        "a trainer runs a job that was cancelled while it waited in the queue",
        "services/trainer/runner.py",
        '        if record.state in TERMINAL_STATES:\n            log.info(\n                "skipping job',
        '        if False:\n            log.info(\n                "skipping job',
        ("tests/test_cancel.py",),
        # Cancelling also takes the job's message off the queue, and a running
        # job is stopped at its first heartbeat: without those too.
        also=(
            (
                "services/scheduler/service.py",
                "            await job_queue.remove(self.js, job)\n",
                "",
            ),
            (  # the record read beside a first delivery's start
                "services/trainer/runner.py",
                "        if (found is None or found[0].state in TERMINAL_STATES) and self._current == (",
                "        if False and self._current == (",
            ),
            (
                "services/trainer/runner.py",
                '        if record.state in TERMINAL_STATES:\n            log.info("job %s has ended (%s): stopping it"',
                '        if False:\n            log.info("job %s has ended (%s): stopping it"',
            ),
        ),
    ),
    Mutant(
        "no-heartbeat",
        "no in-progress heartbeat: a job longer than the ack deadline is redelivered and run twice",
        "services/trainer/runner.py",
        "                await _settle(msg.in_progress)  # heartbeat: still working on it\n",
        "",
        (
            "tests/test_redelivery.py::test_a_job_longer_than_the_ack_deadline_is_neither_redelivered_nor_run_twice",
        ),
    ),
    Mutant(
        "ack-before-outputs",
        "the job is acked before it runs: a trainer that dies mid-job loses it",
        "services/trainer/runner.py",
        "            await self._execute(\n",
        "            await msg.ack()\n            await self._execute(\n",
        (
            "tests/test_redelivery.py::test_a_sigkilled_trainers_job_runs_again_elsewhere_within_the_deadline",
        ),
    ),
    Mutant(
        "ack-on-shutdown",
        "a trainer stopped with SIGTERM acks its job instead of handing it back",
        "services/trainer/runner.py",
        "                    await self._report(\n                        job,\n                        jobs_pb2.JOB_STATE_QUEUED,\n"
        "                        attempt,\n                        lost,\n"
        '                        progress_message=f"returned to the queue: trainer {self.trainer_id} is shutting down",\n'
        "                    )\n                    await _settle(msg.nak, delay=HAND_BACK_DELAY_SECONDS)",
        "                    await _settle(msg.ack)",
        ("tests/test_redelivery.py::test_a_trainer_stopped_with_sigterm_hands_its_job_to_another",),
    ),
    Mutant(
        "admission-skips-params",
        "the server accepts out-of-range fit parameters (only the SDK checked)",
        "services/scheduler/admission.py",
        "            problems = [_split_problem(p) for p in validate_params(params_dict(request.params))]",
        "            problems = []",
        (
            "tests/test_workflow.py::test_the_server_refuses_a_bad_parameter_from_a_raw_stub[local-max_bins-too-large]",
        ),
    ),
    Mutant(
        "upload-accepts-truncated",
        "the gateway keeps an upload without checking its end (a truncated file is stored)",
        "services/gateway/parquet_check.py",
        '        """The stream is complete: check size, hash and footer; read schema."""\n',
        '        """The stream is complete: check size, hash and footer; read schema."""\n        return\n',
        ("tests/test_uploads.py::test_truncated_parquet_is_refused_and_nothing_kept[local]",),
    ),
    Mutant(
        "stale-attempt-wins",
        "an older attempt's events rewrite the record of a newer attempt",
        "services/scheduler/events.py",
        "    if job.state in TERMINAL_STATES or event.attempt < job.attempts:",
        "    if job.state in TERMINAL_STATES:",
        ("tests/test_events.py",),
    ),
    Mutant(
        "lost-attempts-not-counted",
        "a job whose trainer dies every time is retried for ever",
        "services/trainer/runner.py",
        "        lost = record.lost_attempts + (record.state == jobs_pb2.JOB_STATE_RUNNING)",
        "        lost = record.lost_attempts",
        ("tests/test_faults.py::test_a_job_that_kills_its_trainer_every_time_fails_saying_so",),
    ),
    Mutant(
        "model-loaded-per-caller",
        "callers asking for a model at the same moment each load it (50 loads, 50 copies)",
        "services/predictor/models.py",
        "            self._loading[key] = loading\n",
        "",
        (
            "tests/test_online_predict.py::test_a_model_asked_for_by_50_callers_at_once_is_loaded_once",
        ),
    ),
    Mutant(
        "model-cache-unbounded",
        "a predictor keeps every model it ever loaded, until it runs out of memory",
        "services/predictor/models.py",
        "        while self.bytes > self.max_bytes:",
        "        while False:",
        ("tests/test_online_predict.py::test_the_model_cache_stays_within_its_byte_bound",),
    ),
    Mutant(
        "late-progress-reopens-handed-back-job",
        "a progress report folded after a hand-back makes the job RUNNING again (a lost attempt)",
        "services/scheduler/events.py",
        "        if event.attempt == job.attempts and job.state == jobs_pb2.JOB_STATE_QUEUED:",
        "        if False:",
        ("tests/test_events.py::test_a_handed_back_job_is_queued_again_and_keeps_its_lost_count",),
    ),
    Mutant(
        "predict-calls-to-one-predictor",
        "a client's online predictions all go to one predictor of the pool (pick_first)",
        "fityard/client.py",
        "            channel(self.predict_address, _PREDICT_CHANNEL_OPTIONS)",
        "            channel(self.predict_address)",
        ("tests/test_online_predict.py::test_one_clients_calls_are_spread_over_every_predictor",),
    ),
    Mutant(
        "held-out-rows-trained-on",
        "the held-out score is a score on rows the model was trained on",
        "ml/model.py",
        "        validation = _score(model, X_val, y_val, split)",
        "        validation = _score(model, X, y, split)",
        (
            "tests/test_online_predict.py::test_a_fit_reports_its_held_out_score_as_the_downloaded_predictions_of_those_rows_score",
        ),
    ),
]


def problems(mutant: Mutant, tree: Path = ROOT) -> list[str]:
    """Why `mutant` cannot be applied to `tree` as written: a snippet that
    no longer occurs exactly once, or a guarding test file that is gone."""
    found = []
    for relative, old, _ in ((mutant.path, mutant.old, mutant.new), *mutant.also):
        path = tree / relative
        count = path.read_text().count(old) if path.exists() else 0
        if count != 1:
            found.append(f"a snippet occurs {count} times in {relative}")
    for test in mutant.tests:
        if not (tree / test.split("::")[0]).exists():
            found.append(f"no test file for {test}")
    return found


def _apply(tree: Path, mutant: Mutant) -> None:
    if found := problems(mutant, tree):
        raise SystemExit(f"mutant {mutant.name}: {'; '.join(found)}; update tools/mutants.py")
    for relative, old, new in ((mutant.path, mutant.old, mutant.new), *mutant.also):
        path = tree / relative
        path.write_text(path.read_text().replace(old, new))


def _run(mutant: Mutant, timeout: float) -> tuple[bool, float, str]:
    """(caught, seconds, last lines of output)."""
    with tempfile.TemporaryDirectory(prefix=f"fityard-mutant-{mutant.name}-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=SKIP)
        _apply(tree, mutant)
        started = time.monotonic()
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-x",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    *mutant.tests,
                ],
                cwd=tree,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            caught, output = result.returncode != 0, result.stdout + result.stderr
        except subprocess.TimeoutExpired as exc:
            caught, output = (
                True,
                f"timed out after {timeout:.0f} s (a hang counts as caught)\n{exc.stdout or ''}",
            )
        return caught, time.monotonic() - started, output


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", help="run only mutants whose name contains one of these"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--check", action="store_true", help="check every snippet still applies, run nothing"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per mutant (default 600)"
    )
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.names or any(n in m.name for n in args.names)]
    if args.list:
        for m in chosen:
            print(f"{m.name:28} {m.breaks}")
        return 0
    if args.check:
        broken = [(m.name, p) for m in chosen for p in problems(m)]
        for name, problem in broken:
            print(f"{name}: {problem}")
        return 1 if broken else 0
    survivors = []
    for mutant in chosen:
        caught, seconds, output = _run(mutant, args.timeout)
        verdict = "caught" if caught else "SURVIVED"
        print(f"{verdict:9} {mutant.name:28} {seconds:5.0f} s  {mutant.breaks}", flush=True)
        if not caught:
            survivors.append(mutant)
            print("\n".join("    " + line for line in output.strip().splitlines()[-5:]), flush=True)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
