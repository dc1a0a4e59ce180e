"""Merged multi-process metrics: a dead worker's live gauges are dropped (issue 10, item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.metrics import MULTIPROC_ENV, GatewayMetrics

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


def test_a_dead_workers_queue_depth_leaves_the_merged_gauge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={**os.environ, MULTIPROC_ENV: str(tmp_path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline() == "set\n"
    metrics = GatewayMetrics()
    assert DEPTH in metrics.exposition()[0].decode()  # alive: its depth counts
    worker.kill()  # as SIGKILL leaves it: no chance to clean up
    worker.wait(timeout=GUARD_S)
    worker.stdout.close()
    assert worker.stdin is not None
    worker.stdin.close()
    text = metrics.exposition()[0].decode()
    assert "tensorgate_queue_depth{" not in text
    assert not list(tmp_path.glob(f"gauge_livesum_{worker.pid}.db"))
