"""Imports run one way: the server (services/, ml/) may use the client's
public code, the client (fityard/) never uses the server.

Read from the source with `ast`, so an import inside a function counts as
much as one at the top, and checked at run time: `import fityard` and the
SDK load nothing of the server, nor pandas.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_PACKAGES = ("services", "ml")
# What the server may import from the client package: the public generated
# code, the limits both sides agree on, and the format of kept spans.
SERVER_MAY_IMPORT = ("fityard.v1", "fityard.limits", "fityard.traces")
# The demo is a user of the SDK (everything it does to fityard goes through
# the public API, as a user's script would); it imports the public names.
SDK_USERS = {"services/demo.py"}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names imported from it) for every import in the file,
    wherever it is (top level, functions, TYPE_CHECKING blocks), plus the
    string given to importlib.import_module / __import__."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside its own package
                continue
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value, []))
    return found


def _is_under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_client_imports_nothing_of_the_server():
    files = _modules("fityard")
    assert len(files) > 5
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in files
        for line, module, _ in _imports(path)
        if _is_under(module, SERVER_PACKAGES)
    ]
    assert wrong == []


def test_the_server_imports_only_the_clients_public_code():
    import fityard

    wrong = []
    for package in SERVER_PACKAGES:
        for path in _modules(package):
            relative = path.relative_to(ROOT).as_posix()
            for line, module, names in _imports(path):
                if not _is_under(module, ("fityard",)) or _is_under(module, SERVER_MAY_IMPORT):
                    continue
                if module == "fityard" and relative in SDK_USERS:
                    if all(name in fityard.__all__ for name in names) and names:
                        continue
                wrong.append(f"{relative}:{line}: {module} {names}")
    assert wrong == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text(
        "def f():\n"
        "    from services.embedded import serve\n"
        "    import ml.data\n"
        "    importlib.import_module('services.cli')\n"
    )
    assert [module for _, module, _ in _imports(source)] == [
        "services.embedded",
        "ml.data",
        "services.cli",
    ]


@pytest.mark.parametrize(
    "code",
    [
        "import fityard",
        "from fityard import Client, Job, Dataset, FityardError",
        "import fityard.client, fityard.cli; fityard.client.Client('127.0.0.1:1').close()",
    ],
)
def test_loading_the_client_loads_no_server_code(code):
    check = (
        f"{code}\nimport sys\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('services', 'ml', 'pandas', 'pyarrow', 'sklearn', 'nats', 'minio'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
