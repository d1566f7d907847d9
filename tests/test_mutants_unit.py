"""tools/mutants.py finds a mutant's target by structure, not text: one node
in a sample source, edited there and nowhere else, the same node however
the sample is formatted, and an error naming the mutant when there is none
or more than one."""

from __future__ import annotations

import ast
import difflib
import textwrap

import pytest

from tools import mutants as m

SAMPLE = textwrap.dedent(
    '''\
    """A sample module."""

    TERMINAL = ("done",)


    class Runner:
        def on_cancel(self, job):
            if job.state in TERMINAL:  # ended already
                return note("ended — nothing to do", job.id)
            log("cancel", job)
            self.cancel.set()

        def progress(self, job, event):
            if event.attempt != job.attempts or job.state != "running":
                return None
            job.lost += 1
            return settle(job, NAK)
    '''
)

# The same code, formatted otherwise: re-wrapped, other line breaks and
# quotes, comments moved, blank lines changed.
REFORMATTED = textwrap.dedent(
    """\
    '''A sample module.'''
    TERMINAL = ('done',)
    class Runner:
        def on_cancel(self, job):
            # ended already
            if (
                job.state
                in TERMINAL
            ):
                return note('ended — nothing to do',
                            job.id)
            log(
                'cancel',
                job,
            )
            self.cancel.set(
            )

        def progress(self, job, event):
            if (event.attempt != job.attempts
                    or job.state != 'running'):
                return None
            job.lost += (
                1
            )
            return settle(
                job,
                NAK,
            )
    """
)


def _edit(function: str, op: m.Op) -> m.Edit:
    return m.Edit("sample.py", function, op)


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines replaced in `before` and their replacements in `after`;
    every other line is the same, byte for byte (its line ending too)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if tag != "equal":
            removed += [line.rstrip("\n") for line in old[i1:i2]]
            added += [line.rstrip("\n") for line in new[j1:j2]]
    return removed, added


def test_a_selector_finds_exactly_one_node_of_its_function():
    tree = ast.parse(SAMPLE)
    node, _ = m.find(tree, "Runner.on_cancel", m.call("self.cancel.set"))
    assert isinstance(node, ast.Call) and node.lineno == 11
    node, _ = m.find(tree, "Runner.on_cancel", m.if_test("TERMINAL"))
    assert ast.unparse(node) == "job.state in TERMINAL"
    node, parents = m.find(tree, "Runner.progress", m.operand('job.state != "running"'))
    assert isinstance(parents[node], ast.BoolOp)


@pytest.mark.parametrize(
    ("function", "op", "removed", "added"),
    [
        (
            "Runner.on_cancel",
            m.delete(m.call("self.cancel.set")),
            ["        self.cancel.set()"],
            [],
        ),
        (
            "Runner.on_cancel",
            m.replace(m.if_test("TERMINAL"), "False"),
            ["        if job.state in TERMINAL:  # ended already"],
            ["        if False:  # ended already"],
        ),
        (
            "Runner.progress",
            m.drop_operand(m.operand('job.state != "running"')),
            ['        if event.attempt != job.attempts or job.state != "running":'],
            ["        if event.attempt != job.attempts:"],
        ),
        (
            "Runner.progress",
            m.delete(m.aug_assign("job.lost")),
            ["        job.lost += 1"],
            [],
        ),
        (
            "Runner.progress",
            m.replace(m.returned_name("NAK"), "ACK"),
            ["        return settle(job, NAK)"],
            ["        return settle(job, ACK)"],
        ),
        (
            "Runner.on_cancel",
            m.insert_before(m.call("self.cancel.set"), "await ack()"),
            [],
            ["        await ack()"],
        ),
        (
            "Runner.on_cancel",
            m.only_if(m.call("log"), "job.loud"),
            ['        log("cancel", job)'],
            ["        if job.loud:", '            log("cancel", job)'],
        ),
    ],
)
def test_an_operation_changes_its_target_and_nothing_else(function, op, removed, added):
    after = m.mutate(SAMPLE, [_edit(function, op)])
    assert _changed_lines(SAMPLE, after) == (removed, added)


def test_columns_count_characters_not_bytes():
    # ast columns are UTF-8 bytes: an edit after "—" on its line must land
    # where it should.
    op = m.replace(m.argument("note", "job.id"), "None")
    after = m.mutate(SAMPLE, [_edit("Runner.on_cancel", op)])
    assert _changed_lines(SAMPLE, after) == (
        ['            return note("ended — nothing to do", job.id)'],
        ['            return note("ended — nothing to do", None)'],
    )


def test_deleting_the_only_statement_of_a_block_leaves_pass():
    after = m.mutate(SAMPLE, [_edit("Runner.progress", m.delete(m.statement("return None")))])
    assert _changed_lines(SAMPLE, after) == (["            return None"], ["            pass"])


def _mutant(op: m.Op, function: str = "Runner.on_cancel") -> m.Mutant:
    return m.Mutant("sample-mutant", "nothing", (_edit(function, op),), ())


@pytest.mark.parametrize(
    ("op", "function", "says"),
    [
        (m.delete(m.call("self.cancel.clear")), "Runner.on_cancel", "matches 0 nodes"),
        (m.replace(m.if_test("TERMINAL"), "False"), "Runner.progress", "matches 0 nodes"),
        (m.delete(m.call("self.cancel.set")), "Runner.on_pause", "0 definitions of 'on_pause'"),
    ],
)
def test_a_missing_target_is_reported_with_the_mutant_file_and_function(
    tmp_path, op, function, says
):
    (tmp_path / "sample.py").write_text(SAMPLE)
    mutant = _mutant(op, function)
    [problem] = m.problems(mutant, tmp_path)
    assert problem.startswith(f"mutant sample-mutant: sample.py ({function}): ")
    assert says in problem


def test_an_ambiguous_target_is_reported_with_where_each_match_is(tmp_path):
    (tmp_path / "sample.py").write_text(SAMPLE)
    # Two ifs mention job.state in the class's two methods: both named, by line.
    [problem] = m.problems(_mutant(m.replace(m.if_test("job.state"), "False"), "Runner"), tmp_path)
    assert problem == (
        "mutant sample-mutant: sample.py (Runner): the test of the if that mentions "
        "job.state matches 2 nodes in Runner (line 8, line 14)"
    )


def test_a_missing_file_or_test_file_is_reported(tmp_path):
    mutant = m.Mutant("gone", "nothing", (_edit("f", m.delete(m.call("x"))),), ("tests/nope.py",))
    assert m.problems(mutant, tmp_path) == [
        "mutant gone: no file sample.py",
        "mutant gone: no test file for tests/nope.py",
    ]


@pytest.mark.parametrize(
    ("function", "op"),
    [
        ("Runner.on_cancel", m.delete(m.call("self.cancel.set"))),
        ("Runner.on_cancel", m.replace(m.if_test("TERMINAL"), "False")),
        ("Runner.progress", m.drop_operand(m.operand("job.state != 'running'"))),
        ("Runner.progress", m.delete(m.aug_assign("job.lost"))),
        ("Runner.progress", m.replace(m.returned_name("NAK"), "ACK")),
        ("Runner.on_cancel", m.drop_argument(m.argument("note", "job.id"))),
        ("Runner.on_cancel", m.insert_before(m.call("self.cancel.set"), "await ack()")),
    ],
)
def test_a_reformatted_source_resolves_the_same_target(function, op):
    # Code is compared as ast.unparse writes it: quotes and wrapping do not matter.
    before, after = (ast.parse(text) for text in (SAMPLE, REFORMATTED))
    assert ast.dump(before) == ast.dump(after)
    mutated = [
        ast.dump(ast.parse(m.mutate(text, [_edit(function, op)]))) for text in (SAMPLE, REFORMATTED)
    ]
    assert mutated[0] == mutated[1] != ast.dump(before)


def test_every_mutant_of_the_checkout_names_tests_and_edits_that_apply():
    assert len({mutant.name for mutant in m.MUTANTS}) == len(m.MUTANTS)
    for mutant in m.MUTANTS:
        assert mutant.edits and mutant.tests, mutant.name
        assert m.problems(mutant) == [], mutant.name
