"""docker-compose.yml as the tests read it: loaded, interpolated the way
docker compose does (`${NAME}`, `${NAME:-default}`, `${NAME-default}`,
`${NAME:?error}`, `$$`), with .env.example as the `.env`, so tests check
and run exactly what compose would give each container."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


class MissingVariable(KeyError):
    """A `${NAME:?message}` whose variable is unset (compose refuses to start)."""


def load() -> dict:
    """docker-compose.yml, YAML anchors and merge keys resolved."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def dotenv(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The `NAME=value` lines of an env file (comments and blanks skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    return values


def documented(path: Path = ENV_EXAMPLE) -> set[str]:
    """Every name an env file sets or shows commented out (`# NAME=...`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE))


def interpolate(value, env: dict[str, str]):
    """`value` (a string, or a list/dict of them) as compose interpolates it."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        unset_or_empty = not current
        if operator in (":-", "-"):
            missing = unset_or_empty if operator == ":-" else current is None
            return argument if missing else current
        if operator in (":?", "?"):
            missing = unset_or_empty if operator == ":?" else current is None
            if missing:
                raise MissingVariable(f"{name}: {argument}")
            return current
        return current or ""

    return _VARIABLE.sub(replace, value)


def service_environment(compose: dict, service: str, env: dict[str, str]) -> dict[str, str]:
    """The environment compose gives `service`'s container, interpolated."""
    raw = compose["services"][service].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: "" if v is None else str(interpolate(v, env)) for k, v in raw.items()}


def entrypoint() -> list[str]:
    """The image's ENTRYPOINT (exec form) from the Dockerfile's final stage."""
    found = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert found, "the Dockerfile has no ENTRYPOINT in exec form"
    return yaml.safe_load(found[-1])


def command(compose: dict, service: str) -> list[str]:
    raw = compose["services"][service].get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else list(raw)


def host_port(address: str) -> tuple[str, int]:
    """("nats", 4222) from "nats://nats:4222", "nats:4222" or "http://x:1"."""
    address = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = address.rpartition(":")
    return host, int(port)


def healthcheck_port(compose: dict, service: str) -> int:
    """The port a `python -m services probe HOST:PORT` health check asks."""
    test = compose["services"][service]["healthcheck"]["test"]
    assert test[:5] == ["CMD", "python", "-m", "services", "probe"], test
    return host_port(test[5])[1]
