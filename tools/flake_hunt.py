"""Flake hunt: run the stack tests again and again, some runs with a CPU hog
beside them, and list every test that failed at least once.

A test that fails on working code only now and then (under load, on a slow
VM) teaches people to re-run until green. This finds such tests before a
user does: `make flake-hunt` (or `python tools/flake_hunt.py`) runs the
stack tier (`pytest -m stack`) `--runs` times, the last `--hog-runs` of
them with a process spinning on one core at the suite's own priority, and
prints each test that failed or errored with the runs it failed in. Each
run's JUnit XML and output are kept under `--out` for the failure's
details.

    python tools/flake_hunt.py                       # 5 runs, 2 of them with a hog
    python tools/flake_hunt.py --runs 3 --hog-runs 3 -- tests/test_workflow.py
    python tools/flake_hunt.py --runs 1 -- -k watch   # extra pytest arguments after --

Exit status 1 if any test failed in any run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _spin(core: int) -> None:
    """Burn one core until killed: the load a busy neighbour puts on a CI box."""
    os.sched_setaffinity(0, {core})
    while True:
        pass


@contextmanager
def cpu_hog(enabled: bool):
    """A process that keeps one core (the last one) fully busy while the block runs."""
    if not enabled:
        yield
        return
    core = max(os.sched_getaffinity(0))
    hog = multiprocessing.get_context("spawn").Process(target=_spin, args=(core,), daemon=True)
    hog.start()
    try:
        yield
    finally:
        hog.kill()
        hog.join()


def failed_tests(junit: Path) -> list[str]:
    """The node ids (path::name) of the tests that failed or errored in one run's JUnit XML."""
    if not junit.exists():
        return ["<no report: the run did not finish>"]
    failed = []
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 - our own pytest's report
        if case.find("failure") is not None or case.find("error") is not None:
            path = case.get("classname", "").replace(".", "/") + ".py"
            failed.append(f"{path}::{case.get('name')}")
    return failed


def run_once(index: int, hog: bool, out: Path, pytest_args: list[str]) -> dict:
    junit = out / f"run-{index}.xml"
    log = out / f"run-{index}.log"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "stack",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *pytest_args,
    ]
    started = time.monotonic()
    with cpu_hog(hog), log.open("w") as sink:
        code = subprocess.run(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - started
    failed = failed_tests(junit)
    summary = log.read_text().strip().splitlines()[-1:] or [""]
    return {
        "run": index,
        "hog": hog,
        "exit": code,
        "seconds": round(seconds, 1),
        "failed": failed,
        "summary": summary[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of the stack tests (default 5)")
    parser.add_argument(
        "--hog-runs", type=int, default=2, help="how many of them (the last) with a CPU hog"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / ".flake-hunt", help="where each run's report goes"
    )
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for index in range(1, args.runs + 1):
        hog = index > args.runs - args.hog_runs
        result = run_once(index, hog, args.out, args.pytest_args)
        runs.append(result)
        print(
            f"run {index}/{args.runs}{' (CPU hog on one core)' if hog else ''}: "
            f"{result['seconds']:.0f} s, {result['summary']}",
            flush=True,
        )
    failures: dict[str, list[int]] = defaultdict(list)
    for result in runs:
        for test in result["failed"]:
            failures[test].append(result["run"])
    (args.out / "summary.json").write_text(json.dumps({"runs": runs, "failed": failures}, indent=2))
    if not failures:
        print(f"no test failed in {len(runs)} runs")
        return 0
    print(f"{len(failures)} test(s) failed at least once in {len(runs)} runs:")
    for test, where in sorted(failures.items()):
        hogged = sum(runs[i - 1]["hog"] for i in where)
        print(f"  {test}: runs {', '.join(map(str, where))} ({hogged} with the hog)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
