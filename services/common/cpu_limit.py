"""The CPU limit a container runtime put on this process (its cgroup's CPU
quota), in whole CPUs.

Why: a trainer sizes its threads from the CPUs it may use. The affinity mask
(os.sched_getaffinity) sees cpusets, but a Kubernetes CPU limit or
`docker run --cpus` is a CFS quota, which the mask does not show: a trainer
limited to 2 CPUs on a 64-core node would run 64 threads, and the kernel
would throttle them all into 2 CPUs' time, far slower than 2 threads.

cgroup v2: `cpu.max` ("max 100000" or "<quota> <period>") in the process's
cgroup and each ancestor up to the mount (the tightest wins). cgroup v1:
`cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us` in the cpu
controller's directory. A fraction of a CPU rounds up (1.5 CPUs: 2 threads,
never 0).
"""

from __future__ import annotations

import math
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def cpu_limit(root: Path = CGROUP_ROOT, membership: str | None = None) -> int | None:
    """Whole CPUs the quota allows, or None when there is no quota (or no
    cgroup filesystem to read). `membership`: /proc/self/cgroup's text."""
    if membership is None:
        try:
            membership = PROC_SELF_CGROUP.read_text()
        except OSError:
            membership = ""
    v2, v1 = _paths(membership)
    limits = [q for q in (_v2_limit(root, v2), _v1_limit(root, v1)) if q is not None]
    return min(limits) if limits else None


def _paths(membership: str) -> tuple[str, str]:
    """This process's cgroup v2 path and its v1 cpu controller's path."""
    v2 = v1 = "/"
    for line in membership.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            v2 = path or "/"
        elif "cpu" in controllers.split(","):
            v1 = path or "/"
    return v2, v1


def _cpus(quota: float, period: float) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def _v2_limit(root: Path, path: str) -> int | None:
    """The tightest cpu.max from the process's cgroup up to the mount. In a
    container the cgroup namespace makes its own cgroup the mount's root,
    so the file at the root is the container's limit."""
    directory = root / path.lstrip("/")
    found = []
    while True:
        try:
            quota, period = (directory / "cpu.max").read_text().split()
            if quota != "max":
                found.append(_cpus(float(quota), float(period)))
        except (OSError, ValueError):
            pass
        if directory == root or root not in directory.parents:
            break
        directory = directory.parent
    found = [f for f in found if f is not None]
    return min(found) if found else None


def _v1_limit(root: Path, path: str) -> int | None:
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for directory in (root / controller / path.lstrip("/"), root / controller):
            try:
                quota = float((directory / "cpu.cfs_quota_us").read_text())
                period = float((directory / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            return _cpus(quota, period)
    return None
