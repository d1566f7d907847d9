"""The guard between the test tiers (tests/support/tiers.py): a test that is
not marked `stack` cannot start one, and is told how to mark it."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from services.embedded import EmbeddedStack
from tests.support import tiers
from tests.support.s3server import MotoS3Server

Failed = pytest.fail.Exception


def test_this_unit_test_cannot_start_an_embedded_stack(tmp_path):
    with pytest.raises(Failed, match="starts an EmbeddedStack but is not marked 'stack'"):
        EmbeddedStack(tmp_path, trainers=1).start()


def test_nor_an_s3_server():
    with pytest.raises(Failed, match="pytestmark = pytest.mark.stack"):
        MotoS3Server().start()


@pytest.mark.parametrize(
    "argv",
    [
        ["nats-server", "-js"],
        ["grpcurl", "-plaintext", "localhost:1", "list"],
        [sys.executable, "-m", "bench", "--quick"],
        [sys.executable, "-m", "services.gateway"],
        [sys.executable, "-m", "fityard", "up"],
        ["fityard", "demo"],
        "make demo",
    ],
)
def test_nor_run_a_program_that_is_or_starts_a_stack(argv):
    with pytest.raises(Failed, match="is not marked 'stack'"):
        subprocess.run(argv, shell=isinstance(argv, str), check=False)


def test_other_programs_run_as_usual():
    done = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    assert done.stdout == "ok\n"


def item(marked: bool, *fixtures: str):
    mark = SimpleNamespace(name="stack") if marked else None
    return SimpleNamespace(
        nodeid="tests/test_x.py::test_y",
        fixturenames=["tmp_path", *fixtures],
        get_closest_marker=lambda name: mark if name == "stack" else None,
    )


@pytest.mark.parametrize("fixture", sorted(tiers.STACK_FIXTURES))
def test_asking_for_a_stack_fixture_unmarked_fails_before_the_stack_starts(fixture):
    with pytest.raises(Failed) as raised:
        tiers.check_fixtures(item(False, fixture))
    assert f"tests/test_x.py::test_y uses the fixture(s) {fixture}" in str(raised.value)
    tiers.check_fixtures(item(True, fixture))  # marked: fine
    tiers.check_fixtures(item(False, "seed_files"))  # no stack: fine
