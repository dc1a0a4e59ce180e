"""Merged multi-process metrics: a dead worker's live gauges are dropped (issue 10, item 11),
whatever the moment it died (issue 20, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.metrics import MULTIPROC_ENV, GatewayMetrics, merge_live_processes

GUARD_S = 60
# A worker process: sets its queue depth to 5 and lives until its stdin closes.
WORKER = """
import sys
from gateway.metrics import GatewayMetrics
GatewayMetrics().observer("mlp", 1).queue_depth(5)
print("set", flush=True)
sys.stdin.read()
"""
DEPTH = 'tensorgate_queue_depth{model="mlp",version="1"} 5.0'


def start_worker(directory: Path) -> subprocess.Popen[str]:
    """A worker process whose queue depth is 5, writing its samples to ``directory``."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={**os.environ, MULTIPROC_ENV: str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline() == "set\n"
    return worker


def stop_worker(worker: subprocess.Popen[str]) -> None:
    """SIGKILL, as a killed worker dies: no chance to clean up."""
    worker.kill()
    worker.wait(timeout=GUARD_S)
    assert worker.stdout is not None
    assert worker.stdin is not None
    worker.stdout.close()
    worker.stdin.close()


def test_a_dead_workers_queue_depth_leaves_the_merged_gauge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    worker = start_worker(tmp_path)
    metrics = GatewayMetrics()
    assert DEPTH in metrics.exposition()[0].decode()  # alive: its depth counts
    stop_worker(worker)
    text = metrics.exposition()[0].decode()
    assert "tensorgate_queue_depth{" not in text
    assert not list(tmp_path.glob(f"gauge_livesum_{worker.pid}.db"))


def test_a_worker_killed_during_the_merge_is_merged_out(tmp_path: Path) -> None:
    """Alive when the dead are forgotten, dead once its files were read: what was read is
    a dead worker's, so the merge is done again without it."""
    worker = start_worker(tmp_path)
    checks: list[int] = []

    def dies_during_the_read(pid: int) -> bool:
        checks.append(pid)
        return len(checks) == 1  # alive at the first check, dead from the one after the read

    try:
        merged = merge_live_processes(tmp_path, dies_during_the_read)
    finally:
        stop_worker(worker)
    depths = [sample for metric in merged for sample in metric.samples if "depth" in sample.name]
    assert depths == []
    assert checks[:2] == [worker.pid, worker.pid]
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
