"""README.md's table of settings, written from the config's schema
(services/common/config.py) so that it cannot list a setting the services
do not read, or miss one they do. `python tools/settings_table.py` rewrites
the table in README.md; `--check` fails if it is not what the schema gives
(tests/test_config_unit.py runs the same check)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.common.config import SCHEMA
from services.common.settings import Setting

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- settings: written by tools/settings_table.py from services/common/config.py -->"
END = "<!-- settings: end -->"


def _default(declared: Setting) -> str:
    value = declared.default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    shown = declared.render(value)
    return f"`{shown}`" if shown else "empty"


def _row(declared: Setting) -> str:
    doc = f"secret: {declared.doc}" if declared.secret else declared.doc
    readers = ", ".join(declared.readers)
    return f"| `{declared.env}` | {_default(declared)} | {readers} | {doc} |"


def table() -> str:
    """The markdown table, between its markers."""
    rows = [_row(declared) for declared in SCHEMA.settings]
    header = ["| Variable | Default | Read by | What it sets |", "| --- | --- | --- | --- |"]
    return "\n".join([BEGIN, *header, *rows, END])


def with_table(text: str) -> str:
    """`text` (README.md) with its table replaced by the schema's."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no settings table between {BEGIN!r} and {END!r}")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return before + table() + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if README.md's table is stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    if args.check:
        if with_table(text) != text:
            print(
                "README.md's settings table is stale: python tools/settings_table.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(with_table(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
