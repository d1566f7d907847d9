"""`python -m services probe`, the image's health check: exit 0 and SERVING
for a serving gateway, exit 1 naming why for anything else; and the
image's dispatcher refuses an unknown command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.embedded import free_port

pytestmark = pytest.mark.stack


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services", *args], capture_output=True, text=True, timeout=30
    )


def test_probe_says_serving_for_a_serving_gateway(local_stack):
    done = _run("probe", local_stack.address)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{local_stack.address}: SERVING"
    done = _run("probe", local_stack.address, "fityard.v1.JobService")
    assert done.returncode == 0, done.stderr


def test_probe_fails_for_nothing_listening_and_for_an_unknown_service(local_stack):
    nothing = f"127.0.0.1:{free_port()}"
    done = _run("probe", nothing, "--timeout", "1")
    assert done.returncode == 1
    assert nothing in done.stderr and "UNAVAILABLE" in done.stderr
    done = _run("probe", local_stack.address, "no.such.Service")
    assert done.returncode == 1 and "NOT_FOUND" in done.stderr


def test_the_dispatcher_names_its_commands():
    done = _run("gatewya")
    assert done.returncode == 2
    assert (
        "unknown command 'gatewya'" in done.stderr and "gateway, scheduler, trainer" in done.stderr
    )
