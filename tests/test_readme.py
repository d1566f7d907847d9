"""README's commands are true: it opens with the two a newcomer runs, and
the first one (install + embedded stack + seed workflow) works.

The second one, `make test`, is what CI runs (.ci/run), so it is checked by
every CI run rather than from inside itself.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tools.gen_protos import ROOT

pytestmark = pytest.mark.stack


def _first_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_demo_and_test_commands():
    assert _first_commands() == ["make demo", "make test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_first_readme_command_runs_the_demo(tmp_path):
    command = _first_commands()[0]
    # Point the demo at an address where nothing listens, so it starts and
    # stops its own embedded stack, as it does on a newcomer's machine.
    env = {**os.environ, "FITYARD_ADDRESS": "127.0.0.1:1"}
    result = subprocess.run(
        command.split(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    accuracy = float(
        re.search(r"accuracy on the held-out y of test.parquet: ([0-9.]+)", out).group(1)
    )
    assert accuracy > 0.85
    assert "training data has no column 'y'" in out
    assert "missing 1 column the model was trained on: col_0" in out


def test_make_lint_passes():
    """README (Development): `make lint` runs what the tests check."""
    assert "`make lint` runs what the tests check" in (ROOT / "README.md").read_text()
    result = subprocess.run(["make", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_the_unit_tier_is_exactly_the_tests_that_start_nothing(request):
    """README (Development): `pytest -m "not stack"` is the unit tier. Run
    as README gives it (collecting), it selects exactly the tests of this
    run that are not marked `stack`, the bulk of the pure tests, and no test
    of a stack module. This run executes those same tests, and the tiers
    plugin fails any of them that starts a stack, so they pass alone too;
    running them a second time here cost 40 s of the suite's 8 minutes."""
    assert '`.venv/bin/pytest -m "not stack"` is the unit tier' in (ROOT / "README.md").read_text()
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pytest"), "-m", "not stack", "-p", "no:cacheprovider"]
        + ["--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    selected = {line for line in result.stdout.splitlines() if line.startswith("tests/")}
    assert len(selected) > 300
    this_run = {item.nodeid: item for item in request.session.items}
    if len(this_run) > len(selected):  # run within the whole suite: the same tests
        unit_tier = {n for n, item in this_run.items() if item.get_closest_marker("stack") is None}
        assert selected == unit_tier, sorted(selected ^ unit_tier)[:20]
    stack_modules = {
        f"tests/{path.name}"
        for path in (ROOT / "tests").glob("test_*.py")
        if "\npytestmark = pytest.mark.stack\n" in path.read_text()
    }
    modules = {nodeid.split("::")[0] for nodeid in selected}
    assert stack_modules and not modules & stack_modules, sorted(modules & stack_modules)
    assert {"tests/test_ml.py", "tests/test_events.py"} <= modules
