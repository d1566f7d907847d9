"""What a stack's processes are doing, read from /proc: how much CPU they
burn and which are alive. Lets tests check that work really stopped (a
cancelled fit, a killed trainer's worker) instead of trusting a record."""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw.rpartition(")")[2].split()


def session_members(session_ids: set[int]) -> dict[int, list[str]]:
    """Every live process in one of these sessions, with its stat fields.

    The embedded stack starts each service in a session of its own, and the
    processes a service starts (a trainer's worker) stay in its session."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        # fields[0] is the state, [3] the session id; a zombie has done its work.
        if fields and fields[0] != "Z" and int(fields[3]) in session_ids:
            members[int(entry.name)] = fields
    return members


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def cpu_used(session_ids: set[int], seconds: float) -> float:
    """CPU seconds the sessions' processes use over the next `seconds`."""
    before = {pid: _cpu_seconds(f) for pid, f in session_members(session_ids).items()}
    time.sleep(seconds)
    after = {pid: _cpu_seconds(f) for pid, f in session_members(session_ids).items()}
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def stack_sessions(stack) -> set[int]:
    """Session ids of a running EmbeddedStack's services (one each)."""
    return {stack.process(name).pid for name in stack.names()}
