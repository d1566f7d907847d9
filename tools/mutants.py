"""Mutation check: break a core behaviour on purpose and see the suite notice.

`make mutants` (not part of `make test`) copies the checkout to a temp
directory once per mutant, applies one deliberate breakage there, and runs
the tests that guard that behaviour. A mutant the tests still pass against
"survives": the suite would let that bug land. None may survive; the
script exits 1 if one does.

A mutant names the behaviour it breaks and finds what to break by the
code's structure, not its text: a file, a function in it by qualified name
(`Trainer._on_cancel`, `_progress`), a selector for one node in that
function (the call to `self._cancel.set`, the `if` whose test mentions
`TERMINAL_STATES`), and an operation on it (delete, replace, drop an
operand, insert before, ...). Code is compared as `ast.unparse` writes it,
so reformatting a file (line breaks, wrapping, quotes, comments) changes
nothing; the edit is made at the node's position in the source, so the
rest of the file stays byte for byte as it was. A selector that finds no
node or more than one is an error naming the mutant (a refactor must carry
its mutants along, rather than have them silently test nothing).

    python tools/mutants.py              # every mutant
    python tools/mutants.py heartbeat    # those whose name contains "heartbeat"
    python tools/mutants.py --list       # each mutant, and what it edits
    python tools/mutants.py --check      # every mutant still applies (no test run)
"""

from __future__ import annotations

import argparse
import ast
import functools
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".fityard", "__pycache__", ".pytest_cache", "bench-results.json"
)


class MutantError(Exception):
    """A mutant that cannot be applied as written (the message says which
    and where)."""


# --- Selectors: which node of a function an edit is about -----------------


def _code(node: ast.AST) -> str:
    """`node` as ast.unparse writes it: the same however it is formatted."""
    return ast.unparse(node)


@functools.lru_cache
def _normal(code: str) -> str:
    """`code` as ast.unparse writes it, so a selector may be written as the
    file has it (`"running"` or `'running'`, wrapped or not)."""
    return ast.unparse(ast.parse(textwrap.dedent(code).strip()))


def _is(node: ast.AST, code: str) -> bool:
    return _code(node) == _normal(code)


def _mentions(node: ast.AST, code: str) -> bool:
    """Whether `code` (a name, an attribute, any expression) occurs in `node`."""
    return any(_is(sub, code) for sub in ast.walk(node) if isinstance(sub, ast.expr))


@dataclass(frozen=True)
class Selector:
    """`what` is how a reader would say it; `pick(node, parent)` returns
    the node selected when it looks at `node` (under `parent`), else None."""

    what: str
    pick: Callable[[ast.AST, ast.AST | None], ast.AST | None]

    def __str__(self) -> str:
        return self.what


def call(func: str) -> Selector:
    """The call of `func` (`self._cancel.set`, `validate_params`)."""
    return Selector(
        f"the call to {func}",
        lambda n, _: n if isinstance(n, ast.Call) and _is(n.func, func) else None,
    )


def awaited(expression: str) -> Selector:
    """The `await` of `expression` (`attempt.heartbeat()`)."""
    return Selector(
        f"the await of {expression}",
        lambda n, _: n if isinstance(n, ast.Await) and _is(n.value, expression) else None,
    )


def condition(statement: type[ast.If | ast.While], *, mentions: str) -> Selector:
    """The test of the `if` (or `while`) whose test mentions `mentions`."""
    keyword = "if" if statement is ast.If else "while"
    return Selector(
        f"the test of the {keyword} that mentions {mentions}",
        lambda n, _: n.test if isinstance(n, statement) and _mentions(n.test, mentions) else None,
    )


def if_test(mentions: str) -> Selector:
    return condition(ast.If, mentions=mentions)


def while_test(mentions: str) -> Selector:
    return condition(ast.While, mentions=mentions)


def operand(expression: str) -> Selector:
    """The operand `expression` of an `and`/`or`."""
    return Selector(
        f"the operand {expression}",
        lambda n, p: n if isinstance(p, ast.BoolOp) and _is(n, expression) else None,
    )


def aug_assign(target: str) -> Selector:
    """The augmented assignment (`+=`, ...) to `target`."""
    return Selector(
        f"the augmented assignment to {target}",
        lambda n, _: n if isinstance(n, ast.AugAssign) and _is(n.target, target) else None,
    )


def subscript_assign(target: str) -> Selector:
    """The assignment to `target`, a subscript (`self._loading[key]`)."""
    return Selector(
        f"the assignment to {target}",
        lambda n, _: (
            n
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and _is(n.targets[0], target)
            else None
        ),
    )


def returned_name(name: str) -> Selector:
    """The name `name` inside a `return` statement's value."""

    def pick(n: ast.AST, _) -> ast.AST | None:
        if isinstance(n, ast.Return) and n.value is not None:
            found = [s for s in ast.walk(n.value) if isinstance(s, ast.Name) and s.id == name]
            return found[0] if len(found) == 1 else None
        return None

    return Selector(f"the name {name} in the return", pick)


def statement(code: str) -> Selector:
    """The statement whose code is `code` (`return await self._run(...)`)."""
    return Selector(
        f"the statement {code}",
        lambda n, _: n if isinstance(n, ast.stmt) and _is(n, code) else None,
    )


def argument(func: str, value: str) -> Selector:
    """The positional argument `value` of the call to `func`."""

    def pick(n: ast.AST, _) -> ast.AST | None:
        if isinstance(n, ast.Call) and _is(n.func, func):
            found = [a for a in n.args if _is(a, value)]
            return found[0] if found else None
        return None

    return Selector(f"the argument {value} of the call to {func}", pick)


def first_statement() -> Selector:
    """The function's first statement after its docstring (its own, not a
    nested function's)."""

    def pick(n: ast.AST, parent) -> ast.AST | None:
        if parent is None and isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            body = n.body
            has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            return body[1] if has_doc and len(body) > 1 else (None if has_doc else body[0])
        return None

    return Selector("its first statement", pick)


# --- Operations: what an edit does to the node selected ----------------------


@dataclass(frozen=True)
class Op:
    """An operation on a selected node: `what` for a reader, `span(...)`
    the (start, end, new text) of the source it rewrites."""

    what: str
    selector: Selector
    span: Callable[[_Source, ast.AST, dict], tuple[int, int, str]]

    def __str__(self) -> str:
        return self.what


def delete(selector: Selector) -> Op:
    """Delete the statement the selected node is (or is part of)."""
    return Op(f"delete {selector}", selector, lambda src, n, up: src.delete(_stmt(n, up), up))


def replace(selector: Selector, new: str) -> Op:
    """Replace the selected node with the code `new`."""
    return Op(f"replace {selector} with {new}", selector, lambda src, n, up: src.replace(n, new))


def drop_operand(selector: Selector) -> Op:
    """Drop the selected operand (and its `and`/`or`) from its BoolOp."""
    return Op(f"drop {selector}", selector, lambda src, n, up: src.drop_operand(n, up[n]))


def drop_argument(selector: Selector) -> Op:
    """Drop the selected positional argument from its call."""
    return Op(f"drop {selector}", selector, lambda src, n, up: src.drop_argument(n, up[n]))


def unwrap(selector: Selector) -> Op:
    """Replace the selected call with its only argument."""
    return Op(
        f"unwrap {selector} (keep its argument)",
        selector,
        lambda src, n, up: src.replace(n, src.text_of(_only_argument(n))),
    )


def insert_before(selector: Selector, new: str) -> Op:
    """Insert the statement(s) `new` before the statement of the node."""
    return Op(
        f"insert {new} before {selector}",
        selector,
        lambda src, n, up: src.insert_before(_stmt(n, up), new),
    )


def only_if(selector: Selector, test: str) -> Op:
    """Put the statement of the node under `if test:`."""
    return Op(
        f"do {selector} only if {test}",
        selector,
        lambda src, n, up: src.only_if(_stmt(n, up), test),
    )


def _stmt(node: ast.AST, up: dict) -> ast.stmt:
    while not isinstance(node, ast.stmt):
        node = up[node]
    return node


def _only_argument(node: ast.AST) -> ast.expr:
    if not isinstance(node, ast.Call) or len(node.args) != 1 or node.keywords:
        raise MutantError("unwrap needs a call with exactly one argument")
    return node.args[0]


class _Source:
    """A file's text, with ast positions (1-based lines, UTF-8 byte
    columns) turned into offsets in it."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno <= len(self.lines) else ""
        return self.starts[lineno - 1] + len(line.encode()[:col].decode())

    def bounds(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno, node.end_col_offset),
        )

    def text_of(self, node: ast.AST) -> str:
        start, end = self.bounds(node)
        return self.text[start:end]

    def indent(self, node: ast.stmt) -> str:
        start, _ = self.bounds(node)
        before = self.text[self.starts[node.lineno - 1] : start]
        if before.strip():
            raise MutantError("the statement does not start its line")
        return before

    def lines_of(self, node: ast.stmt) -> tuple[int, int]:
        """Offsets of the whole lines `node` is on (it must be alone there,
        but for a comment after it)."""
        self.indent(node)
        _, end = self.bounds(node)
        rest = self.text[end : self.starts[node.end_lineno]]
        if rest.strip() and not rest.strip().startswith("#"):
            raise MutantError("the statement shares its last line with another")
        return self.starts[node.lineno - 1], self.starts[node.end_lineno]

    def replace(self, node: ast.AST, new: str) -> tuple[int, int, str]:
        start, end = self.bounds(node)
        return start, end, new

    def delete(self, node: ast.stmt, up: dict) -> tuple[int, int, str]:
        start, end = self.lines_of(node)
        siblings = next(
            body
            for field in ("body", "orelse", "finalbody", "handlers")
            if isinstance(body := getattr(up[node], field, None), list) and node in body
        )
        alone = len(siblings) == 1
        return start, end, f"{self.indent(node)}pass\n" if alone else ""

    def insert_before(self, node: ast.stmt, new: str) -> tuple[int, int, str]:
        start, _ = self.lines_of(node)
        return start, start, textwrap.indent(new.rstrip("\n") + "\n", self.indent(node))

    def only_if(self, node: ast.stmt, test: str) -> tuple[int, int, str]:
        start, end = self.lines_of(node)
        body = textwrap.indent(self.text[start:end], "    ")
        return start, end, f"{self.indent(node)}if {test}:\n{body}"

    def drop_operand(self, node: ast.AST, boolop: ast.AST) -> tuple[int, int, str]:
        values = boolop.values
        i = values.index(node)
        if i + 1 < len(values):  # up to the next operand
            return self.bounds(node)[0], self.bounds(values[i + 1])[0], ""
        return self.bounds(values[i - 1])[1], self.bounds(node)[1], ""

    def drop_argument(self, node: ast.AST, call_node: ast.AST) -> tuple[int, int, str]:
        args = [*call_node.args, *call_node.keywords]
        i = args.index(node)
        if i + 1 < len(args):
            return self.bounds(node)[0], self.bounds(args[i + 1])[0], ""
        if i == 0:
            return (*self.bounds(node), "")
        return self.bounds(args[i - 1])[1], self.bounds(node)[1], ""


# --- Mutants ------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One change to one function: in `path`, in `function` (qualified
    name: `Class.method`, `function`), do `op`."""

    path: str
    function: str
    op: Op

    def __str__(self) -> str:
        return f"{self.path} {self.function}: {self.op}"


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str  # the behaviour a user would lose
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids that must catch it


def _walk(root: ast.AST) -> Iterator[tuple[ast.AST, ast.AST | None]]:
    stack: list[tuple[ast.AST, ast.AST | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        stack.extend((child, node) for child in reversed(list(ast.iter_child_nodes(node))))


def _function(tree: ast.Module, qualified: str) -> ast.AST:
    scope: ast.AST = tree
    for part in qualified.split("."):
        found = [
            node
            for node in ast.iter_child_nodes(scope)
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name == part
        ]
        if len(found) != 1:
            raise MutantError(f"{len(found)} definitions of {part!r} (looking for {qualified})")
        scope = found[0]
    return scope


def find(tree: ast.Module, function: str, selector: Selector) -> tuple[ast.AST, dict]:
    """The one node `selector` picks in `function` (nested functions
    included: they are part of its code), and the parent of every
    node in the function (an edit may need the statement or BoolOp around
    it). MutantError if it picks none or several."""
    scope = _function(tree, function)
    parents: dict = {}
    picked = []
    for node, parent in _walk(scope):
        parents[node] = parent
        if (target := selector.pick(node, parent)) is not None and target not in picked:
            picked.append(target)
    if len(picked) != 1:
        lines = ", ".join(f"line {n.lineno}" for n in picked)
        raise MutantError(
            f"{selector} matches {len(picked)} nodes in {function}"
            + (f" ({lines})" if lines else "")
        )
    return picked[0], parents


def mutate(text: str, edits: list[Edit]) -> str:
    """`text` (one file's source) with `edits` (all in that file) made."""
    tree = ast.parse(text)
    source = _Source(text)
    spans = []
    for edit in edits:
        node, parents = find(tree, edit.function, edit.op.selector)
        spans.append(edit.op.span(source, node, parents))
    spans.sort(reverse=True)
    for (_, end, _), (next_start, _, _) in zip(spans[1:], spans, strict=False):
        if end > next_start:
            raise MutantError("two edits overlap")
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    try:
        ast.parse(text)
    except SyntaxError as exc:
        raise MutantError(f"the edits leave code that does not parse ({exc})") from exc
    return text


def mutated(mutant: Mutant, tree: Path = ROOT) -> dict[str, str]:
    """The new text of each file `mutant` changes in `tree`. MutantError
    (naming the mutant, the file and the function) if it cannot apply."""
    files: dict[str, list[Edit]] = {}
    for edit in mutant.edits:
        files.setdefault(edit.path, []).append(edit)
    texts = {}
    for relative, edits in files.items():
        path = tree / relative
        if not path.exists():
            raise MutantError(f"mutant {mutant.name}: no file {relative}")
        try:
            texts[relative] = mutate(path.read_text(), edits)
        except MutantError as exc:
            where = ", ".join(dict.fromkeys(e.function for e in edits))
            raise MutantError(f"mutant {mutant.name}: {relative} ({where}): {exc}") from exc
    return texts


def problems(mutant: Mutant, tree: Path = ROOT) -> list[str]:
    """Why `mutant` cannot be applied to `tree`: a target not found exactly
    once, or a guarding test file that is gone."""
    found = []
    try:
        mutated(mutant, tree)
    except MutantError as exc:
        found.append(str(exc))
    for test in mutant.tests:
        if not (tree / test.split("::")[0]).exists():
            found.append(f"mutant {mutant.name}: no test file for {test}")
    return found


def _apply(tree: Path, mutant: Mutant) -> None:
    if found := problems(mutant, tree):
        raise SystemExit("; ".join(found) + "; update tools/mutants.py")
    for relative, text in mutated(mutant, tree).items():
        (tree / relative).write_text(text)


RUNNER = "services/trainer/runner.py"
RUNNING = "services/trainer/running.py"
ATTEMPTS = "services/scheduler/attempts.py"
# The heartbeat's read of the record: it stops a job whose record has ended
# (cancelled), so a mutant that breaks another way to stop a cancelled job
# breaks this one too, or this one would stop the job anyway.
RECORD_SAYS_ENDED = Edit(RUNNING, "record_says", replace(if_test("TERMINAL_STATES"), "False"))

MUTANTS = [
    Mutant(
        "trace-context-not-sent",
        "the job's message carries no trace context: the trainer's work is a trace of its own",
        (Edit("services/common/job_queue.py", "publish", unwrap(call("with_trace_headers"))),),
        ("tests/test_trace_cli.py::test_trace_prints_the_jobs_tree_across_the_services",),
    ),
    Mutant(
        "watch-final-only",
        "WatchJob sends only the final record: no RUNNING, no progress reaches the watcher",
        (
            Edit(
                "services/gateway/jobs.py",
                "JobService.WatchJob",
                only_if(call("jobs_pb2.WatchJobResponse"), "job.state in TERMINAL_STATES"),
            ),
        ),
        (
            "tests/test_workflow.py::test_watch_reports_each_state_in_order_until_the_job_ends[local]",
            "tests/test_cli.py::test_watch_follows_a_job_to_the_end[local]",
        ),
    ),
    Mutant(
        "cancel-ignored-by-trainer",
        "a trainer ignores cancels of the job it runs (the notice and the record): the fit goes on",
        (Edit(RUNNER, "Trainer._on_cancel", delete(call("self._cancel.set"))), RECORD_SAYS_ENDED),
        ("tests/test_workflow.py::test_a_running_job_can_be_cancelled_and_its_fit_stops[local]",),
    ),
    Mutant(
        "cancel-record-ignored",
        "a trainer does not check the record for a cancel while the job runs",
        (RECORD_SAYS_ENDED,),
        ("tests/test_faults.py::test_a_cancel_sent_while_no_trainer_listens_still_stops_the_job",),
    ),
    Mutant(
        "cancelled-queued-job-runs",
        "a trainer runs a job that was cancelled while it waited in the queue",
        # Cancelling also takes the job's message off the queue, a first
        # delivery reads the record while it starts, a claim's answer is
        # the record, and a running job is stopped at its first heartbeat:
        # without all of those too.
        (
            Edit(RUNNER, "Trainer._ended", replace(if_test("TERMINAL_STATES"), "False")),
            Edit(
                "services/scheduler/service.py",
                "SchedulerService.CancelJob",
                delete(call("job_queue.remove")),
            ),
            Edit(RUNNER, "Trainer._cancel_if_ended", replace(if_test("TERMINAL_STATES"), "False")),
            Edit(
                "services/trainer/claims.py",
                "_answer",
                replace(if_test("TERMINAL_STATES"), "False"),
            ),
            RECORD_SAYS_ENDED,
        ),
        ("tests/test_cancel.py",),
    ),
    Mutant(
        "no-heartbeat",
        "no in-progress heartbeat: a job longer than the ack deadline is redelivered and run twice",
        (Edit(RUNNING, "run_attempt", delete(awaited("attempt.heartbeat()"))),),
        (
            "tests/test_redelivery.py::test_a_job_longer_than_the_ack_deadline_is_neither_redelivered_nor_run_twice",
        ),
    ),
    Mutant(
        "ack-before-outputs",
        "the job is acked before it runs: a trainer that dies mid-job loses it",
        (
            Edit(
                RUNNER,
                "Trainer._attempt",
                insert_before(
                    statement("return await self._run(attempt, threads, stop)"),
                    "await attempt.ack()",
                ),
            ),
        ),
        (
            "tests/test_redelivery.py::test_a_sigkilled_trainers_job_runs_again_elsewhere_within_the_deadline",
        ),
    ),
    Mutant(
        "ack-on-shutdown",
        "a trainer stopped with SIGTERM acks its job instead of handing it back",
        (
            Edit(
                "services/trainer/attempt.py",
                "handed_back",
                replace(returned_name("NAK"), "ACK"),
            ),
        ),
        ("tests/test_redelivery.py::test_a_trainer_stopped_with_sigterm_hands_its_job_to_another",),
    ),
    Mutant(
        "admission-skips-params",
        "the server accepts out-of-range fit parameters (only the SDK checked)",
        (
            Edit(
                "services/scheduler/admission.py",
                "Admission.admit",
                replace(call("validate_params"), "[]"),
            ),
        ),
        (
            "tests/test_workflow.py::test_the_server_refuses_a_bad_parameter_from_a_raw_stub[local-max_bins-too-large]",
        ),
    ),
    Mutant(
        "upload-accepts-truncated",
        "the gateway keeps an upload without checking its end (a truncated file is stored)",
        (
            Edit(
                "services/gateway/parquet_check.py",
                "ParquetChecker.finish",
                insert_before(first_statement(), "return"),
            ),
        ),
        ("tests/test_uploads.py::test_truncated_parquet_is_refused_and_nothing_kept[local]",),
    ),
    Mutant(
        "stale-attempt-wins",
        "an older attempt's events rewrite the record of a newer attempt",
        (
            Edit(
                ATTEMPTS, "_ends_current", replace(if_test("event.attempt < job.attempts"), "False")
            ),
        ),
        ("tests/test_events.py",),
    ),
    Mutant(
        "lost-attempts-not-counted",
        "a job whose trainer dies every time is retried for ever",
        (Edit(ATTEMPTS, "_started", delete(aug_assign("job.lost_attempts"))),),
        ("tests/test_faults.py::test_a_job_that_kills_its_trainer_every_time_fails_saying_so",),
    ),
    Mutant(
        "worker-death-not-counted",
        "a job whose worker dies every time is retried for ever",
        (Edit(ATTEMPTS, "_worker_died", delete(aug_assign("job.lost_attempts"))),),
        ("tests/test_faults.py::test_a_job_that_kills_its_worker_every_time_fails_saying_so",),
    ),
    Mutant(
        "claim-ignores-delivery",
        "a stale or repeated claim (an old delivery) starts a new attempt and counts one lost",
        (Edit(ATTEMPTS, "_started", replace(if_test("_delivery"), "False")),),
        ("tests/test_events.py::test_a_stale_or_repeated_claim_changes_nothing",),
    ),
    Mutant(
        "late-progress-reopens-handed-back-job",
        "a progress report folded after a hand-back makes the job RUNNING again (a lost attempt)",
        (
            Edit(
                ATTEMPTS, "_progress", drop_operand(operand("job.state != State.JOB_STATE_RUNNING"))
            ),
        ),
        (
            "tests/test_events.py::test_a_late_progress_report_of_a_handed_back_attempt_does_not_reopen_it",
        ),
    ),
    Mutant(
        "model-loaded-per-caller",
        "callers asking for a model at the same moment each load it (50 loads, 50 copies)",
        (
            Edit(
                "services/predictor/models.py",
                "ModelCache.get",
                delete(subscript_assign("self._loading[key]")),
            ),
        ),
        (
            "tests/test_online_predict.py::test_a_model_asked_for_by_50_callers_at_once_is_loaded_once",
        ),
    ),
    Mutant(
        "model-cache-unbounded",
        "a predictor keeps every model it ever loaded, until it runs out of memory",
        (
            Edit(
                "services/predictor/models.py",
                "ModelCache._keep",
                replace(while_test("self.max_bytes"), "False"),
            ),
        ),
        ("tests/test_online_predict.py::test_the_model_cache_stays_within_its_byte_bound",),
    ),
    Mutant(
        "predict-calls-to-one-predictor",
        "a client's online predictions all go to one predictor of the pool (pick_first)",
        (
            Edit(
                "fityard/client.py",
                "Client.__init__",
                drop_argument(argument("channel", "_PREDICT_CHANNEL_OPTIONS")),
            ),
        ),
        ("tests/test_online_predict.py::test_one_clients_calls_are_spread_over_every_predictor",),
    ),
    Mutant(
        "held-out-rows-trained-on",
        "the held-out score is a score on rows the model was trained on",
        (Edit("ml/model.py", "fit", replace(call("_score"), "_score(model, X, y, split)")),),
        (
            "tests/test_online_predict.py::test_a_fit_reports_its_held_out_score_as_the_downloaded_predictions_of_those_rows_score",
        ),
    ),
]


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
                    # One process: a mutant's few tests gain nothing from
                    # the suite's `-n 2` but its workers' start-up.
                    "-n",
                    "0",
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
        "--check", action="store_true", help="check every mutant still applies, run nothing"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per mutant (default 600)"
    )
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.names or any(n in m.name for n in args.names)]
    width = max((len(m.name) for m in chosen), default=0)
    if args.list:
        for m in chosen:
            print(f"{m.name:{width}} {m.breaks}")
            for edit in m.edits:
                print(f"    {edit}")
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
        print(f"{verdict:9} {mutant.name:{width}} {seconds:5.0f} s  {mutant.breaks}", flush=True)
        if not caught:
            survivors.append(mutant)
            print("\n".join("    " + line for line in output.strip().splitlines()[-5:]), flush=True)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
