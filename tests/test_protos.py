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
    result = subprocess.run([_buf(), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the public API against its last release -----------------------------------
#
# protos/released/fityard-v1.json is the public API (protos/fityard/v1) as the
# last release shipped it: a buf image, written by `make api-release` when a
# release is cut. A change that would break a client built against it (a
# field removed or renumbered, a type changed, a method gone) fails here; the
# internal protos (services/internal/v1) are free to change.

RELEASED = "protos/released/fityard-v1.json"
PUBLIC = "protos/fityard/v1"


def _breaking(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        # The image holds only the public files, so the internal ones count
        # as new: changing them is never "breaking".
        [_buf(), "breaking", "--against", RELEASED],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _buf() -> str:
    return shutil.which("buf", path=str(Path(sys.executable).parent)) or "buf"


def test_public_api_keeps_every_promise_of_the_last_release():
    result = _breaking(ROOT)
    assert result.returncode == 0, "breaking change, see README (Development):\n" + result.stdout


def test_a_breaking_change_to_the_public_api_is_caught(tmp_path):
    """The check above can fail: renumber a released field in a copy."""
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    jobs = tmp_path / PUBLIC / "jobs.proto"
    text = jobs.read_text()
    assert "  string dataset_id = 4;" in text
    jobs.write_text(text.replace("  string dataset_id = 4;", "  string dataset_id = 99;", 1))
    result = _breaking(tmp_path)
    assert result.returncode != 0
    assert 'field "4" with name "dataset_id" on message "Job" was deleted' in result.stdout
