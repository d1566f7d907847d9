"""The hosted-runner CI workflow: valid for GitHub Actions (its published
schema), and it runs exactly README's test command and builds the image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_the_workflow_validates_against_the_github_workflow_schema():
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_it_runs_readmes_test_command_and_builds_the_image():
    readme_test = next(
        line.split("#")[0].strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("make test")
    )
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    runs = [step.get("run", "") for step in jobs["test"]["steps"]]
    assert readme_test in runs
    uses = [step.get("uses", "") for step in jobs["image"]["steps"]]
    assert any(u.startswith("docker/build-push-action") for u in uses)
    assert any(u.startswith("hadolint/hadolint-action") for u in uses)
    build = next(s for s in jobs["image"]["steps"] if "build-push-action" in s.get("uses", ""))
    assert build["with"]["context"] == "." and (ROOT / "Dockerfile").is_file()


def test_it_audits_the_locked_dependencies_the_image_installs():
    """pip-audit reads the same lock file the Dockerfile installs, without
    resolving anything else (--no-deps --disable-pip: the pins are the
    truth), and fails on anything it cannot audit (--strict)."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    (audit,) = [
        step["run"] for step in jobs["audit"]["steps"] if "pip-audit" in step.get("run", "")
    ]
    command = next(line for line in audit.splitlines() if line.strip().startswith("pip-audit"))
    lock = "deploy/requirements-server.txt"
    assert f"--requirement {lock}" in command and (ROOT / lock).is_file()
    assert lock in (ROOT / "Dockerfile").read_text()
    for flag in ("--no-deps", "--disable-pip", "--strict"):
        assert flag in command
