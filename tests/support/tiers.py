"""The two test tiers, and the guard between them.

`pytest -m "not stack"` is the unit tier: pure logic, no stack, seconds in
all. Everything that starts a stack (nats-server, the services, an
EmbeddedStack, moto's S3 server, `fityard up`, grpcurl against a gateway,
the benchmarks) is marked `stack`, a module at a time:

    pytestmark = pytest.mark.stack

A test that is not marked and starts a stack anyway fails at once, saying
so (tests/conftest.py installs the guard), rather than making the unit tier
slow without anyone noticing: by using one of the conftest's stack
fixtures, by starting an EmbeddedStack or a MotoS3Server, or by running a
program that is or starts a stack.
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

MARK = "stack"

# The conftest fixtures that start (or hand out) a running stack or S3 server.
STACK_FIXTURES = frozenset({"s3_server", "local_stack", "s3_stack", "stack", "nats_url"})

# Programs that are, start or talk to a stack.
_PROGRAMS = frozenset({"nats-server", "moto_server", "grpcurl"})
# ... and commands of programs that start one.
_COMMANDS = {"fityard": {"up", "demo"}, "make": {"demo", "test", "bench", "up", "mutants"}}
# `python -m <module>` modules that start one (a service, the CLI's up or
# demo, the benchmarks).
_MODULES = ("bench.", "services.")

HOW = (
    "mark it (its module: `pytestmark = pytest.mark.stack`) or keep it pure; "
    "the unit tier, pytest -m 'not stack', starts no stack"
)

# The node id of the test being run when it is not marked `stack`, else None.
_unmarked: str | None = None


def is_stack_test(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARK) is not None


def check_fixtures(item: pytest.Item) -> None:
    """Fail an unmarked test that asks for a stack fixture, before the
    fixture runs (a session stack already up would otherwise be handed
    over silently)."""
    if is_stack_test(item):
        return
    used = sorted(STACK_FIXTURES & set(item.fixturenames))
    if used:
        pytest.fail(
            f"{item.nodeid} uses the fixture(s) {', '.join(used)}, which start a stack, "
            f"but is not marked {MARK!r}: {HOW}",
            pytrace=False,
        )


@contextmanager
def running(item: pytest.Item) -> Iterator[None]:
    """While `item` is set up, run and torn down, starting a stack fails
    unless it is marked."""
    global _unmarked
    _unmarked = None if is_stack_test(item) else item.nodeid
    try:
        yield
    finally:
        _unmarked = None


def refuse(what: str) -> None:
    """Fail the running test if it is not marked `stack`: it starts `what`."""
    if _unmarked is not None:
        pytest.fail(f"{_unmarked} starts {what} but is not marked {MARK!r}: {HOW}", pytrace=False)


def stack_command(args: str | bytes | Sequence) -> str | None:
    """The command line if `args` (as given to subprocess.Popen) starts or
    talks to a stack, else None."""
    if isinstance(args, (str, bytes)):
        try:
            argv = shlex.split(os.fsdecode(args))
        except ValueError:
            return None
    else:
        argv = [os.fsdecode(a) for a in args]
    if not argv:
        return None
    program = os.path.basename(argv[0])
    module = argv[argv.index("-m") + 1] if "-m" in argv[1:-1] else ""
    if module == "fityard":  # python -m fityard up: the CLI, as `fityard up`
        program = module
    starts = (
        program in _PROGRAMS
        or bool(set(argv[1:]) & _COMMANDS.get(program, set()))
        or module == "bench"
        or module.startswith(_MODULES)
    )
    return shlex.join(argv) if starts else None


def install() -> None:
    """Make the ways a stack starts call `refuse` first: EmbeddedStack and
    MotoS3Server's start(), and subprocess.Popen (run, check_output, asyncio
    subprocesses) for the programs above."""
    from services.embedded import EmbeddedStack
    from tools.s3server import MotoS3Server

    def guarded(start, what):
        @functools.wraps(start)
        def wrapper(self, *args, **kwargs):
            refuse(what)
            return start(self, *args, **kwargs)

        wrapper.__tiers_guard__ = True
        return wrapper

    for cls, what in [(EmbeddedStack, "an EmbeddedStack"), (MotoS3Server, "moto's S3 server")]:
        if not getattr(cls.start, "__tiers_guard__", False):
            cls.start = guarded(cls.start, what)

    popen_init = subprocess.Popen.__init__
    if getattr(popen_init, "__tiers_guard__", False):
        return

    @functools.wraps(popen_init)
    def guarded_popen(self, args, *rest, **kwargs):
        if _unmarked is not None and (command := stack_command(args)) is not None:
            refuse(f"`{command}`")
        popen_init(self, args, *rest, **kwargs)

    guarded_popen.__tiers_guard__ = True
    subprocess.Popen.__init__ = guarded_popen
