"""The environment each child of the stack starts with.

The services read only FITYARD_* settings (services/common/config.py), so
what the stack tells them is written through the schema (SCHEMA.to_env):
a setting renamed there is renamed here too. This process's environment
lies under what the stack chooses, the stack's `env` on top of it, and a
child's own settings (its id, port, lanes; stack.py) on top of both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from services.common.config import SCHEMA
from services.common.runtime import PARENT_PID_ENV

# The services are importable from this checkout or installed package.
_ROOT = str(Path(__file__).resolve().parents[2])

_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def otlp_endpoint_set(environ: Mapping[str, str]) -> bool:
    """Whether traces are sent elsewhere already (then the stack keeps none)."""
    return any(environ.get(name) for name in _OTLP_ENDPOINTS)


def service_env(
    *,
    settings: Mapping[str, object],
    span_receiver_port: int | None,
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    """The environment shared by the service children: this process's, the
    stack's `settings` (attribute path -> value, through the schema), the
    trace exporter's when the stack keeps traces, text logs unless asked
    otherwise, then `extra_env` over everything."""
    env = os.environ.copy()
    env.update(SCHEMA.to_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    # The services die with this process (stack.NATS_PARENT_DEATH_SIGNAL).
    env[PARENT_PID_ENV] = str(os.getpid())
    if span_receiver_port is not None:
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{span_receiver_port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                # Spans reach `fityard trace` within a second of ending.
                "OTEL_BSP_SCHEDULE_DELAY": "500",
            }
        )
    # Text logs in <data_dir>/logs (their stderr is a file, so they would
    # default to JSON): people read these files, and tests and bench/
    # parse their lines. FITYARD_LOG_FORMAT=json (environment or `env`)
    # asks for JSON lines instead.
    env.setdefault(SCHEMA.env("log_format"), "text")
    env.update(extra_env)
    return _importable(env)


def program_env() -> dict[str, str]:
    """The environment of a program that is not ours (nats-server): this
    process's, with our packages importable for lifecycle's exec shim."""
    return _importable(os.environ.copy())


def _importable(env: dict[str, str]) -> dict[str, str]:
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
    return env
