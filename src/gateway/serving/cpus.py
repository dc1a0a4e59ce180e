"""How many CPUs this process may use: its affinity mask and its cgroup's CPU quota.

``os.cpu_count()`` counts the machine. A container limited to 2 CPUs (``docker run
--cpus 2``, a Kubernetes ``limits.cpu``) sees every CPU of its node there, but the kernel
throttles it to its quota: ``cpu.max`` (cgroup v2, "quota period" or "max period") or
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (cgroup v1, -1 for none). A fractional
quota (1.5 CPUs) is rounded up. Each cgroup from this process's own up to the root may
set a quota; the smallest one binds. Files that cannot be read or parsed are ignored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

MAX_WORKERS = 64

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
# Where cgroup v1 mounts the cpu controller, depending on the distribution.
_V1_CPU_MOUNTS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")


def available_cpus(
    *,
    root: Path = CGROUP_ROOT,
    self_cgroup: Path = SELF_CGROUP,
    affinity: int | None = None,
) -> int:
    """The CPUs this process may use: the least of its affinity and its cgroup quota, at
    least 1. ``affinity`` defaults to ``len(os.sched_getaffinity(0))`` (tests pass one)."""
    if affinity is None:
        affinity = _affinity()
    quota = cgroup_cpu_quota(root=root, self_cgroup=self_cgroup)
    cpus = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, cpus)


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cgroup_cpu_quota(*, root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The CPU quota (CPUs, possibly fractional) of this process's cgroups, or None
    when none sets one."""
    quotas = [q for q in _quotas(root, _cgroup_paths(self_cgroup)) if q is not None]
    return min(quotas) if quotas else None


def _cgroup_paths(self_cgroup: Path) -> dict[str, str]:
    """The cgroup path of each hierarchy in ``/proc/self/cgroup``: ``""`` for the unified
    (v2) one, the controller list (``cpu,cpuacct``) for v1 ones."""
    try:
        text = self_cgroup.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    return paths


def _quotas(root: Path, paths: dict[str, str]) -> Iterator[float | None]:
    if (root / "cgroup.controllers").is_file():  # cgroup v2 mounted at the root
        for directory in _lineage(root, paths.get("", "/")):
            yield _v2_quota(directory / "cpu.max")
        return
    for mount in _V1_CPU_MOUNTS:
        hierarchy = root / mount
        if hierarchy.is_dir():
            controllers = next((k for k in paths if "cpu" in k.split(",")), "")
            for directory in _lineage(hierarchy, paths.get(controllers, "/")):
                yield _v1_quota(directory)
            return


def _lineage(mount: Path, cgroup: str) -> Iterator[Path]:
    """``mount/cgroup`` and each parent up to ``mount``. In a container that mounts its
    own cgroup as the root, the host's path does not exist below it: the walk then starts
    at the deepest part that does."""
    directory = mount.joinpath(*[part for part in cgroup.split("/") if part not in ("", "..")])
    while directory != mount and not directory.is_dir():
        directory = directory.parent
    while True:
        yield directory
        if directory == mount:
            return
        directory = directory.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:  # -1: no quota (v1); nonsense otherwise
        return None
    return quota_us / period_us


def _v2_quota(cpu_max: Path) -> float | None:
    text = _read(cpu_max)
    if text is None:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(directory: Path) -> float | None:
    quota = _read(directory / "cpu.cfs_quota_us")
    period = _read(directory / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return _ratio(quota, period)


def process_count(workers: int | Literal["auto"]) -> int:
    """Worker processes for the ``workers`` setting: the number, or with ``auto`` one per
    CPU this process may use, at most ``MAX_WORKERS``."""
    return min(available_cpus(), MAX_WORKERS) if workers == "auto" else workers
