"""The API definition: lint-clean, and the checked-in code is what protos/ generates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tools.gen_protos import ROOT, generate

GENERATED_DIRS = ["fityard/v1", "services/internal/v1"]


def _generated_files(root: Path) -> dict[str, bytes]:
    files = {}
    for d in GENERATED_DIRS:
        for path in sorted((root / d).glob("*_pb2*.py*")):
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def test_checked_in_code_matches_protos(tmp_path):
    generate(tmp_path)
    fresh = _generated_files(tmp_path)
    checked_in = _generated_files(ROOT)
    assert fresh, "protoc generated nothing"
    assert sorted(fresh) == sorted(checked_in), "generated file set differs: run `make protos`"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"out of date, run `make protos`: {stale}"


def test_buf_lint_passes():
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or "buf"
    result = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
