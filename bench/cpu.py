"""CPU seconds of a process tree, from /proc: what a benchmark charges to
fityard (nats-server, the services, the trainers' worker processes)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        # The name (field 2) may hold spaces; fields after its ')' are split.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def parent(pid: int) -> int | None:
    """The parent pid of a live process."""
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


def descendants(pids: list[int]) -> list[int]:
    """`pids` and every live process below them."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process in `pids`, children
    it waited for included."""
    out = {}
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            out[pid] = sum(int(v) for v in fields[11:15]) / _TICK
    return out


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two cpu_seconds() readings of the same processes
    (a process that started in between counts from zero)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
