"""The code on a job's path stays readable: no function there is over 50
lines. That path (upload, submit, queue, run, report, fold) is where the
timing bugs were; a function that does one step reads, and tests, as one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOST_LINES = 50
# The modules a job passes through, from the upload to its end.
JOB_PATH = (
    "services/gateway/datasets.py",
    "services/gateway/jobs.py",
    "services/common/job_queue.py",
    "services/scheduler",
    "services/trainer",
    "ml",
    # and what runs them all on one machine (`fityard up`, every stack test)
    "services/embedded",
)


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _modules():
    for entry in JOB_PATH:
        path = ROOT / entry
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_no_function_on_the_job_path_is_over_50_lines():
    long = [
        f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({fn.end_lineno - fn.lineno + 1} lines)"
        for path in _modules()
        for fn in _functions(path)
        if fn.end_lineno - fn.lineno + 1 > MOST_LINES
    ]
    assert not long, "split these into steps that say what they do:\n" + "\n".join(long)
