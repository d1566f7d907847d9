"""The Dockerfile, checked without a container engine: hadolint finds
nothing, and what the image promises holds in its text: a non-root user,
the one entry point with a probe for its health check, a command for every
service compose and the Helm chart run and a port for each one's listener,
files copied that exist, and dependencies installed only from the
hash-pinned lock file, which pins every dependency of the server extra at a
version the extra allows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

from tests.support import compose as c

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements-server.txt"
CHART_TEMPLATES = ROOT / "deploy" / "helm" / "fityard" / "templates"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _locked() -> dict[str, str]:
    return {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", LOCK.read_text(), re.M)
    }


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_a_non_root_user_with_one_entry_point_and_a_probe():
    final = _final_stage()
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["python", "-m", "services"]') in final
    assert (ROOT / "services" / "__main__.py").is_file()
    (healthcheck,) = [args for word, args in final if word == "HEALTHCHECK"]
    assert '"python", "-m", "services", "probe"' in healthcheck
    assert not any(
        word == "ENV" and re.search(r"SECRET|PASSWORD|KEY=", args) for word, args in final
    )


def test_the_image_runs_every_service_compose_and_helm_start_and_exposes_its_port():
    """Each fityard container's command is one `python -m services` runs
    (services/__main__.py), the same set in compose and the chart; every
    address a service listens on (a *_LISTEN setting) is an EXPOSEd port."""
    from services.__main__ import SERVICES

    compose = c.load()
    composed = {
        c.command(compose, name)[0]
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("fityard:")
    }
    charted = {  # the templates whose container runs the image with its component's command
        re.search(r'\$component := "(\w+)"', text).group(1)
        for text in (f.read_text() for f in CHART_TEMPLATES.glob("*.yaml"))
        if "args: [{{ $component }}]" in text
    }
    assert composed == charted, (composed, charted)
    unknown = sorted(composed - set(SERVICES))
    assert not unknown, (
        f"compose and the chart run {unknown}, which `python -m services` does not: "
        "add them to SERVICES in services/__main__.py"
    )
    for name in composed:
        assert (ROOT / "services" / name / "__main__.py").is_file(), name
    (exposed,) = [args for word, args in _final_stage() if word == "EXPOSE"]
    listening = {
        c.host_port(value)[1]
        for key, value in compose["x-fityard-env"].items()
        if key.endswith("_LISTEN")
    }
    assert listening <= {int(port) for port in exposed.split()}, (listening, exposed)


def test_every_copied_path_exists_and_the_context_lets_it_in():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**" in lines, ".dockerignore leaves everything out but what it names"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for word, args in _instructions():
        if word != "COPY" or args.startswith("--from"):
            continue
        *sources, _destination = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source.rstrip("/") in allowed, f"COPY {source}: .dockerignore leaves it out"


def test_dependencies_come_only_from_the_lock_file_with_hashes():
    installs = [args for word, args in _instructions() if word == "RUN" and "pip install" in args]
    assert any(
        "--require-hashes" in args and "requirements-server.txt" in args for args in installs
    )
    # the project itself goes in without pulling anything unpinned
    assert all("--require-hashes" in a or "--no-deps" in a for a in installs), installs
    # each pinned requirement is a block: `name==version \` and its hashes
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().strip())
    pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    assert len(pinned) == len(_locked()) > 10
    unhashed = [b.split()[0] for b in pinned if "--hash=sha256:" not in b]
    assert not unhashed, f"pinned without a hash: {unhashed}"


def test_the_lock_pins_every_server_dependency_at_an_allowed_version():
    """`make lock` after changing the server extra keeps this true."""
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in server["optional-dependencies"]["server"]]
    wanted += [Requirement(r) for r in server["dependencies"]]
    locked = _locked()
    for requirement in wanted:
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not in {LOCK.name}: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={locked[name]}, outside {requirement}: run make lock"
        )
