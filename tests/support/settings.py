"""The settings the services read, found in the code itself, so that the
deployment files (.env.example, docker-compose.yml, the Helm chart) can be
checked against them: a setting added to the config and forgotten in a
deployment fails a test instead of a customer's rollout."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "services" / "common" / "config.py"

# OpenTelemetry's standard variables the services honour
# (services/common/telemetry.py); deployments set the ones they need.
OTEL_SETTINGS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_SDK_DISABLED",
)


def service_settings() -> set[str]:
    """Every FITYARD_* variable the one config reads: the first argument of
    each call to its `_env*` readers in services/common/config.py."""
    tree = ast.parse(CONFIG.read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("_env")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).startswith("FITYARD_")
        ):
            names.add(node.args[0].value)
    return names
