"""The Targets table of the benchmark report: yes, no, or not judged when a quick run was
too short for a target's measurement."""

from __future__ import annotations

from typing import Any

import pytest

from report import targets_table
from results import LargeJson, Measurement, Report
from targets import MEMORY_RUN_S, QUICK_MEMORY_S, NotJudged, targets, verdict_cell

ROW = Measurement("x", "mlp", 16, 100.0, 1.0, 2.0, 0, 200)


def _report(*, seconds: float, growth_pct: float, quick: bool) -> Report:
    """A run with no matrix rows: only the overload, large JSON and memory targets."""
    overload = {
        "ok": 100.0,
        "rejected_503": 0.0,
        "other_statuses": 0.0,
        "goodput_per_s": 90.0,
        "capacity_per_s": 100.0,
        "server_p99_queue_wait_ms": 1.0,
        "queue_bound_ms": 2.0,
        "p99_admitted_ms": 3.0,
    }
    memory = {
        "seconds": seconds,
        "rss_start_mib": 100.0,
        "rss_end_mib": 100.0 * (1 + growth_pct / 100),
        "growth_pct": growth_pct,
        "achieved_per_s": 70.0,
        "errors": 0.0,
        "rejected_503": 0.0,
    }
    large = LargeJson(1_000_000, 1000, 1, 10.0, 12.0, ROW, ROW, 5, 5, 100.0)
    fields: dict[str, Any] = {
        "measurements": [],
        "binary": [],
        "binary_rounds": 1,
        "grpc_failures": {},
        "access_log": [],
        "remote": [],
        "large_json": large,
        "two_subjects": [],
        "overload": overload,
        "memory": memory,
        "default_workers": 2,
        "load_before": 0.0,
        "load_after": 0.0,
        "seconds_per_run": 2,
        "rounds": 1,
        "total_s": 60.0,
        "quick": quick,
        "auth": True,
        "cpu": "test CPU",
    }
    return Report(**fields)


def _memory_row(report: Report) -> str:
    [row] = [line for line in targets_table(report) if line.startswith("| RSS flat")]
    return row


def test_a_quick_run_leaves_the_memory_target_not_judged() -> None:
    report = _report(seconds=QUICK_MEMORY_S, growth_pct=12.0, quick=True)
    row = _memory_row(report)
    assert row.startswith(f"| RSS flat (<= 5% growth) over {MEMORY_RUN_S:.0f} s at 70%")
    assert "(+12.0%) over 15 s" in row
    assert row.endswith("| not judged: run too short (15 s of the 120 s needed) |")
    assert "**no**" not in row


@pytest.mark.parametrize(("growth_pct", "met"), [(0.3, "yes"), (5.1, "**no**")])
def test_a_full_run_judges_the_memory_target(growth_pct: float, met: str) -> None:
    row = _memory_row(_report(seconds=MEMORY_RUN_S, growth_pct=growth_pct, quick=False))
    assert row.endswith(f"| {met} |")


def test_the_other_targets_are_judged_in_a_quick_run() -> None:
    verdicts = [
        verdict for name, _, verdict in targets(_report(seconds=15, growth_pct=0, quick=True))
    ]
    assert len(verdicts) == 6
    assert sum(isinstance(verdict, NotJudged) for verdict in verdicts) == 1


def test_the_met_column() -> None:
    assert verdict_cell(True) == "yes"
    assert verdict_cell(False) == "**no**"
    assert verdict_cell(NotJudged("why")) == "not judged: why"
