"""README's commands are true: it opens with the two a newcomer runs, and
the first one (install + embedded stack + seed workflow) works.

The second one, `make test`, is what CI runs (.ci/run), so it is checked by
every CI run rather than from inside itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET

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


def test_the_unit_tier_runs_alone_and_starts_nothing(tmp_path):
    """README (Development): `pytest -m "not stack"` is the unit tier. Run
    as README gives it, it passes, it is the bulk of the pure tests, and no
    test of a stack module is in it."""
    assert '`.venv/bin/pytest -m "not stack"` is the unit tier' in (ROOT / "README.md").read_text()
    report = tmp_path / "unit.xml"
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pytest"), "-m", "not stack", "-q", "-p", "no:cacheprovider"]
        + [f"--junitxml={report}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed > 300
    ran = {case.get("classname") for case in ET.parse(report).iter("testcase")}  # noqa: S314 - our own report
    stack_modules = {
        f"tests.{path.stem}"
        for path in (ROOT / "tests").glob("test_*.py")
        if "\npytestmark = pytest.mark.stack\n" in path.read_text()
    }
    assert stack_modules and not ran & stack_modules, sorted(ran & stack_modules)
    assert "tests.test_ml" in ran and "tests.test_events" in ran
