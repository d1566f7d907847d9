"""The code style is checked, not hoped for: ruff's rules (chosen in
pyproject.toml) and its formatter, and the mutation script's targets still
matching the code they break (a refactor must carry them along)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_finds_nothing():
    result = _run(str(RUFF), "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted():
    result = _run(str(RUFF), "format", "--check", ".")
    assert result.returncode == 0, "run `make format`:\n" + result.stdout + result.stderr


def test_every_mutant_still_applies():
    result = _run(sys.executable, "tools/mutants.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
