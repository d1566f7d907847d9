"""Regenerate the Python gRPC code from protos/ (the one command: `make protos`).

Each file lands beside the code that owns it, named by its proto package: the
public API (protos/fityard/v1) next to the SDK as `fityard.v1`, the services'
internal messages (protos/services/internal/v1) with the server as
`services.internal.v1`, so the light client ships no internal protos. Never edit them by
hand; tests/test_protos.py checks they match this script's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc on every file under protos/, writing into out_dir."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *proto_files(),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
