"""How a setting is declared, read from the environment and written back.

A setting is declared once, as a field of a frozen config dataclass
(services/common/config.py) made by `setting(...)`: its variable, default,
one-line doc and the services that read it live in the field's metadata, so
the dataclass default, what `from_env` reads, the README's table, the
deployment files' checks and the environment `fityard up` gives its children
cannot drift apart. Reading follows one rule for every setting: an unset or
empty variable means the default (docker compose passes each setting as
`${NAME:-}`), and a bad value stops the service with a line naming the
variable, what is wrong and how to fix it, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any

# The services that read a setting (Setting.readers).
GATEWAY = "gateway"
SCHEDULER = "scheduler"
TRAINER = "trainer"
PREDICTOR = "predictor"
SERVICES = (GATEWAY, SCHEDULER, TRAINER, PREDICTOR)

_SETTING = "fityard.setting"  # field metadata key: the field's Setting
_GROUP = "fityard.group"  # field metadata key: a nested config dataclass

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One FITYARD_* variable. `parse` turns a non-empty value into the
    setting's (SystemExit naming the variable when it cannot); `check`,
    given the values read so far, refuses a combination; `default_from`
    derives the default from them; `attr` is its path in Config
    ("nats_url", "storage.root"), filled in by Schema."""

    env: str
    default: Any
    doc: str
    readers: tuple[str, ...]
    parse: Callable[[Setting, str], Any]
    secret: bool = False
    check: Callable[[Mapping[str, Any]], None] | None = None
    default_from: Callable[[Mapping[str, Any]], Any] | None = None
    attr: str = ""

    def read(self, environ: Mapping[str, str], values: Mapping[str, Any]) -> Any:
        raw = environ.get(self.env)
        if raw is None or raw == "":
            return self.default_from(values) if self.default_from else self.default
        return self.parse(self, raw)

    def render(self, value: Any) -> str:
        """`value` as the variable that reads back as it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _text(setting: Setting, raw: str) -> str:
    return raw


def _path(setting: Setting, raw: str) -> Path:
    return Path(raw)


def _whole(minimum: int) -> Callable[[Setting, str], int]:
    def parse(setting: Setting, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SystemExit(f"{setting.env}={raw!r} is not a whole number") from None
        if value < minimum:
            raise SystemExit(f"{setting.env}={raw!r} must be at least {minimum}")
        return value

    return parse


def _positive(setting: Setting, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{setting.env}={raw!r} is not a number") from None
    if not value > 0:
        raise SystemExit(f"{setting.env}={raw!r} must be greater than 0")
    return value


def _yes_no(setting: Setting, raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _TRUE + _FALSE:
        raise SystemExit(f"{setting.env}={raw!r} is neither true nor false (write true or false)")
    return word in _TRUE


def _choice(choices: tuple[str, ...], upper: bool) -> Callable[[Setting, str], str]:
    def parse(setting: Setting, raw: str) -> str:
        if raw.strip() == "":
            return setting.default
        word = raw.strip().upper() if upper else raw.strip().lower()
        if word not in choices:
            raise SystemExit(f"{setting.env}={raw!r} is not one of {', '.join(choices)}")
        return word

    return parse


def _parser(default: Any, minimum: int, choices: tuple[str, ...], upper: bool) -> Callable:
    """How a setting of `default`'s type is read (bool before int: it is one)."""
    if choices:
        return _choice(choices, upper)
    if isinstance(default, bool):
        return _yes_no
    if isinstance(default, int):
        return _whole(minimum)
    if isinstance(default, float):
        return _positive
    if isinstance(default, Path):
        return _path
    return _text


def setting(
    env: str,
    default: Any,
    doc: str,
    readers: tuple[str, ...],
    *,
    minimum: int = 1,
    choices: tuple[str, ...] = (),
    upper: bool = False,
    parse: Callable[[Setting, str], Any] | None = None,
    secret: bool = False,
    check: Callable[[Mapping[str, Any]], None] | None = None,
    default_from: Callable[[Mapping[str, Any]], Any] | None = None,
) -> Any:
    """A config dataclass field that is the setting `env`: a whole number
    (at least `minimum`) for an int default, a number greater than 0 for a
    float, true/false for a bool, one of `choices` (upper- or lower-cased)
    when given, a path for a Path, else the text; `parse` overrides."""
    declared = Setting(
        env=env,
        default=default,
        doc=doc,
        readers=readers,
        parse=parse or _parser(default, minimum, choices, upper),
        secret=secret,
        check=check,
        default_from=default_from,
    )
    return field(default=default, metadata={_SETTING: declared})


def group(cls: type) -> Any:
    """A config dataclass field holding the settings of `cls` (another one)."""
    return field(default_factory=cls, metadata={_GROUP: cls})


def read(cls: type, environ: Mapping[str, str] | None = None) -> Any:
    """An instance of config dataclass `cls` from `environ` (default: the
    process environment), each setting read and checked in field order."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(cls):
        if _GROUP in f.metadata:
            values[f.name] = read(f.metadata[_GROUP], environ)
            continue
        declared: Setting = f.metadata[_SETTING]
        values[f.name] = declared.read(environ, values)
        if declared.check:
            declared.check(values)
    return cls(**values)


def _walk(cls: type, prefix: str = "") -> Iterator[Setting]:
    for f in fields(cls):
        if _GROUP in f.metadata:
            yield from _walk(f.metadata[_GROUP], f"{prefix}{f.name}.")
        else:
            yield _replace(f.metadata[_SETTING], attr=prefix + f.name)


class Schema:
    """Every setting of a config dataclass, by attribute path and by variable."""

    def __init__(self, cls: type):
        self.settings: tuple[Setting, ...] = tuple(_walk(cls))
        self.by_attr = {s.attr: s for s in self.settings}
        self.by_env = {s.env: s for s in self.settings}
        if len(self.by_env) != len(self.settings):
            raise TypeError(f"{cls.__name__} declares a variable twice")

    def env(self, attr: str) -> str:
        """The variable of setting `attr` ("nats_url", "storage.root")."""
        try:
            return self.by_attr[attr].env
        except KeyError:
            raise KeyError(f"no setting {attr!r}; settings: {', '.join(self.by_attr)}") from None

    def to_env(self, values: Mapping[str, Any]) -> dict[str, str]:
        """`values` (attribute path -> value) as the variables that read back as them."""
        return {self.env(attr): self.by_attr[attr].render(v) for attr, v in values.items()}
