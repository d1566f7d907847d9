"""The Helm chart (deploy/helm/fityard) rendered the way `helm template`
would, by Helm's own Go SDK in-process (helm-python-sdk: no helm binary).

The chart depends on the official NATS chart, which `helm dependency build`
fetches from its chart repository; the test machines cannot reach it, so
`chart_with_dependencies` puts the vendored copy (tests/data/charts/nats,
its SOURCE.md says where from) where that command would, in a copy of the
chart: the renders hold the NATS cluster the chart really installs.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "fityard"
VENDORED = ROOT / "tests" / "data" / "charts"
RELEASE = "fy"
NAMESPACE = "ml"


def chart_with_dependencies(into: Path) -> Path:
    """A copy of the chart under `into` with its dependencies in charts/,
    each the very version Chart.yaml asks for."""
    chart = into / CHART.name
    shutil.copytree(CHART, chart)
    for dependency in yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]:
        source = VENDORED / dependency["name"]
        vendored = yaml.safe_load((source / "Chart.yaml").read_text())["version"]
        if vendored != dependency["version"]:
            raise AssertionError(
                f"Chart.yaml wants {dependency['name']} {dependency['version']}, "
                f"tests/data/charts has {vendored}: vendor that version (SOURCE.md)"
            )
        shutil.copytree(source, chart / "charts" / dependency["name"])
    return chart


def merged(base: dict, override: dict) -> dict:
    """`override` on top of `base`, maps merged key by key (as Helm merges
    several values files)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def values_file(name: str) -> dict:
    return yaml.safe_load((CHART / name).read_text()) or {}


def render(chart: Path, values: dict[str, Any]) -> list[dict]:
    """Every object an install of release `fy` into namespace `ml` would
    create, hooks included, `helm test` pods left out. Objects whose chart
    names no namespace (the NATS chart's) get the release's, as the install
    gives them."""
    with helm.Chart.load(str(chart)) as loaded:
        rendered = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for name, text in sorted(rendered.items()):
        if not name.endswith(".yaml"):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            annotations = doc["metadata"].get("annotations") or {}
            if annotations.get("helm.sh/hook") == "test":
                continue
            doc["metadata"].setdefault("namespace", NAMESPACE)
            docs.append(doc)
    return docs
