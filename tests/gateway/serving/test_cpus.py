"""The CPUs a process may use: affinity and cgroup quotas, read from fake cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.serving.cpus import available_cpus, cgroup_cpu_quota
from gateway.serving.run import worker_count
from gateway.settings import Settings


def _v2(tmp_path: Path, cpu_max: str | None, cgroup: str = "/") -> tuple[Path, Path]:
    """A cgroup v2 tree whose (own) cgroup has ``cpu.max``; the process's cgroup file."""
    root = tmp_path / "cgroup"
    own = root.joinpath(*[p for p in cgroup.split("/") if p])
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    if cpu_max is not None:
        (own / "cpu.max").write_text(cpu_max + "\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"0::{cgroup}\n")
    return root, self_cgroup


def _v1(tmp_path: Path, quota: str, period: str = "100000") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    cpu = root / "cpu,cpuacct"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text(quota + "\n")
    (cpu / "cpu.cfs_period_us").write_text(period + "\n")
    self_cgroup = tmp_path / "self-cgroup"
    # Without a cgroup namespace the host's path shows; the container's cgroup is the mount.
    self_cgroup.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    return root, self_cgroup


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("200000 100000", 2), ("max 100000", 8), ("150000 100000", 2), ("50000 100000", 1)],
    ids=["a container of 2 CPUs", "no quota", "1.5 CPUs round up", "half a CPU is one"],
)
def test_cgroup_v2_quota(tmp_path: Path, cpu_max: str, expected: int) -> None:
    root, self_cgroup = _v2(tmp_path, cpu_max)
    assert available_cpus(root=root, self_cgroup=self_cgroup, affinity=8) == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("200000", "100000", 2), ("-1", "100000", 8), ("250000", "100000", 3)],
    ids=["2 CPUs", "-1 is no quota", "2.5 CPUs round up"],
)
def test_cgroup_v1_quota(tmp_path: Path, quota: str, period: str, expected: int) -> None:
    root, self_cgroup = _v1(tmp_path, quota, period)
    assert available_cpus(root=root, self_cgroup=self_cgroup, affinity=8) == expected


def test_an_affinity_smaller_than_the_quota_wins(tmp_path: Path) -> None:
    root, self_cgroup = _v2(tmp_path, "400000 100000")
    assert available_cpus(root=root, self_cgroup=self_cgroup, affinity=3) == 3


def test_the_smallest_quota_from_the_own_cgroup_up_binds(tmp_path: Path) -> None:
    root, self_cgroup = _v2(tmp_path, "600000 100000", cgroup="/system.slice/gw.service")
    (root / "system.slice" / "cpu.max").write_text("300000 100000\n")
    assert cgroup_cpu_quota(root=root, self_cgroup=self_cgroup) == 3.0
    assert available_cpus(root=root, self_cgroup=self_cgroup, affinity=16) == 3


@pytest.mark.parametrize(
    "cpu_max", ["", "garbage", "100000", "x 100000", "100000 0", "-5 100000", "\xff\xfe"]
)
def test_garbage_files_are_ignored(tmp_path: Path, cpu_max: str) -> None:
    root, self_cgroup = _v2(tmp_path, cpu_max)
    assert cgroup_cpu_quota(root=root, self_cgroup=self_cgroup) is None
    assert available_cpus(root=root, self_cgroup=self_cgroup, affinity=4) == 4


def test_no_cgroup_files_at_all_leave_the_affinity(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    assert available_cpus(root=missing, self_cgroup=missing, affinity=5) == 5
    assert available_cpus(root=missing, self_cgroup=missing, affinity=0) == 1


def test_this_process_gets_at_least_one() -> None:
    assert available_cpus() >= 1


def test_auto_is_the_default_and_a_number_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENSORGATE_WORKERS", raising=False)
    assert Settings().workers == "auto"
    assert worker_count(Settings()) == min(available_cpus(), 64)
    assert worker_count(Settings(workers=3)) == 3
    monkeypatch.setenv("TENSORGATE_WORKERS", "2")
    assert Settings().workers == 2
    monkeypatch.setenv("TENSORGATE_WORKERS", "auto")
    assert Settings().workers == "auto"
