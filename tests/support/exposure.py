"""A service started listening beyond loopback without the credential its
callers would need: it must refuse to start (its exit and what it says)."""

from __future__ import annotations

import os
import subprocess
import sys

from services.embedded import free_port


def start_exposed(module: str, listen_setting: str, credential_setting: str, **env: str):
    """Run `python -m module` on 0.0.0.0 without `credential_setting`."""
    environment = {**os.environ, listen_setting: f"0.0.0.0:{free_port()}", **env}
    environment.pop(credential_setting, None)
    return subprocess.run(
        [sys.executable, "-m", module],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
