"""A container's CPU limit (its cgroup's CPU quota) caps a trainer's
threads: read from fake cgroup trees of both versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import config
from services.common.cpu_limit import cpu_limit

V2_ONLY = "0::/\n"  # a container's own cgroup namespace


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    "cpu_max, expected",
    [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2), ("20000 100000\n", 1)],
)
def test_cgroup_v2_cpu_max(tmp_path, cpu_max, expected):
    write(tmp_path / "cpu.max", cpu_max)
    assert cpu_limit(tmp_path, V2_ONLY) == expected


def test_cgroup_v2_the_tightest_of_the_cgroup_and_its_ancestors(tmp_path):
    """Outside a cgroup namespace the process's own path is under the mount."""
    write(tmp_path / "kubepods" / "cpu.max", "300000 100000")
    write(tmp_path / "kubepods" / "pod1" / "cpu.max", "max 100000")
    write(tmp_path / "kubepods" / "pod1" / "c1" / "cpu.max", "400000 100000")
    assert cpu_limit(tmp_path, "0::/kubepods/pod1/c1\n") == 3


@pytest.mark.parametrize(
    "quota, expected", [("-1", None), ("200000", 2), ("50000", 1), ("250000", 3)]
)
def test_cgroup_v1_cfs_quota(tmp_path, quota, expected):
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", quota)
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", "100000")
    membership = "4:memory:/\n3:cpu,cpuacct:/\n0::/\n"
    assert cpu_limit(tmp_path, membership) == expected


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert cpu_limit(tmp_path, "") is None
    assert cpu_limit(tmp_path / "missing", "0::/x\n") is None
    write(tmp_path / "cpu.max", "garbage")
    assert cpu_limit(tmp_path, V2_ONLY) is None


def test_usable_cores_is_capped_by_the_limit(monkeypatch):
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: set(range(64)))
    monkeypatch.setattr(config, "cpu_limit", lambda: 2)
    assert config.usable_cores() == 2
    monkeypatch.setattr(config, "cpu_limit", lambda: None)
    assert config.usable_cores() == 64
    monkeypatch.setattr(config, "cpu_limit", lambda: 128)  # a limit above the cores changes nothing
    assert config.usable_cores() == 64
