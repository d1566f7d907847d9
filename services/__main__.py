"""`python -m services <command>`: the one entry point of the server image.

    python -m services gateway | scheduler | trainer | predictor   run that service
    python -m services probe HOST:PORT [SERVICE]        gRPC health check (exit 0 if SERVING)

Each service is also `python -m services.<name>`; this dispatcher lets one
image (Dockerfile) run any of them by its command, and keeps the probe's
start-up light (a service's modules are imported only when it runs).
"""

from __future__ import annotations

import runpy
import sys

SERVICES = ("gateway", "scheduler", "trainer", "predictor")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "probe":
        from services.probe import main as probe

        return probe(rest)
    if command not in SERVICES:
        print(
            f"unknown command {command!r}: use one of {', '.join(SERVICES)} or probe",
            file=sys.stderr,
        )
        return 2
    sys.argv = [f"services.{command}", *rest]
    runpy.run_module(f"services.{command}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
