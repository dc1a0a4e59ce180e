"""The two-subject rows of make bench: their targets, report section and the fair share
cost line of make bench-ab (issue 20)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ab import FAIR_SHARE_OFF, Figure, fair_share_cost
from docs.links import anchors
from report import write_report
from results import ON, TWO_WORKERS, LargeJson, Measurement, Report, TwoSubjects
from targets import targets, two_subject_targets


def row(
    *,
    share: float = 0.99,
    alone: float = 700.0,
    beside: float = 400.0,
    p99: float = 20.0,
    unanswered: int = 0,
) -> TwoSubjects:
    """A polite caller at 700 ok req/s alone, p99 10 ms."""
    return TwoSubjects(
        server=ON,
        rounds=3,
        seconds=5.0,
        alone_ok_per_s=alone,
        alone_p99_ms=10.0,
        alone_ok_share=1.0,
        beside_ok_per_s=beside,
        beside_p99_ms=p99,
        beside_ok_share=share,
        flood_ok_per_s=1500.0,
        flood_503_share=0.1,
        unanswered=unanswered,
    )


def test_the_p99_bound_is_three_times_alone_or_twenty_ms_more_whichever_is_higher() -> None:
    assert row().p99_bound_ms == 30.0  # 10 + 20 > 3 x 10
    slow = TwoSubjects(**{**row().__dict__, "alone_p99_ms": 15.0})
    assert slow.p99_bound_ms == 45.0  # 3 x 15 > 15 + 20


@pytest.mark.parametrize(
    ("polite", "met"),
    [
        (row(), True),
        (row(share=0.95, beside=350.0, p99=30.0), True),  # every bound reached exactly
        (row(share=0.94), False),
        (row(beside=349.0), False),
        (row(p99=30.1), False),
        (row(alone=0.0, beside=0.0), False),
        (row(unanswered=1), False),  # a request that arrived is answered, the flood's too
    ],
)
def test_a_polite_caller_meets_its_targets_only_within_all_bounds(
    polite: TwoSubjects, met: bool
) -> None:
    assert polite.met is met


def report_with(rows: list[TwoSubjects]) -> Report:
    """A report of one measurement per model and the given two-subject rows."""
    one = Measurement(ON, "mlp", 64, 1000.0, 1.0, 2.0, 0, 2000)
    return Report(
        measurements=[
            Measurement(ON, model, 64, 1000.0, 1.0, 2.0, 0, 2000)
            for model in ("mlp", "digits", "wide")
        ],
        binary=[],
        binary_rounds=5,
        grpc_failures={},
        access_log=[],
        remote=[],
        large_json=LargeJson(1000, 10, 5, 1.0, 1.0, one, one, 1, 1, 1.0),
        two_subjects=rows,
        overload=dict.fromkeys(
            (
                "server_p99_queue_wait_ms",
                "offered_per_s",
                "attempts_per_s",
                "ok",
                "rejected_503",
                "other_statuses",
                "client_dropped",
                "goodput_per_s",
                "capacity_per_s",
                "p50_admitted_ms",
                "p99_admitted_ms",
                "queue_bound_ms",
                "wrk_capacity_per_s",
            ),
            1.0,
        ),
        memory=dict.fromkeys(
            (
                "seconds",
                "rate_per_s",
                "achieved_per_s",
                "errors",
                "rejected_503",
                "rss_start_mib",
                "rss_end_mib",
                "growth_pct",
            ),
            1.0,
        ),
        default_workers=2,
        load_before=0.5,
        load_after=0.5,
        seconds_per_run=2,
        rounds=3,
        total_s=60.0,
        quick=True,
        auth=True,
        cpu="test CPU",
    )


def test_each_server_gets_a_target_row_with_its_figures() -> None:
    two = TwoSubjects(**{**row(beside=300.0).__dict__, "server": TWO_WORKERS})
    rows = two_subject_targets(report_with([row(), two]))
    assert [ok for _, _, ok in rows] == [True, False]
    name, measured, _ = rows[1]
    assert TWO_WORKERS in name
    assert measured == (
        "99.0% answered 200; 300 vs 700 ok req/s = 43%; p99 20.0 vs 10.0 ms (bound 30.0 ms);"
        " 0 unanswered"
    )
    assert rows[0] in targets(report_with([row()]))


def test_the_page_has_the_two_subject_table_and_targets(tmp_path: Path) -> None:
    write_report(report_with([row()]), tmp_path)
    page = (tmp_path / "benchmarks.md").read_text()
    assert "## Two subjects (fair share)" in page
    assert f"| {ON} | 700 | 10.0 | 100.0% | 400 | 20.0 | 99.0% | 57% | 1,500 | 10% | 0 |" in page
    assert "| polite caller (4 connections) beside a 256-connection flood" in page
    assert "`make soak`" in page
    defined = anchors(tmp_path / "benchmarks.md", page)
    linked = re.findall(r"\]\(#([^)]+)\)", page)
    assert "ab-and-soak-runs" in linked
    assert set(linked) <= defined


def test_a_run_without_two_subject_rows_has_no_such_section(tmp_path: Path) -> None:
    write_report(report_with([]), tmp_path)
    assert "Two subjects" not in (tmp_path / "benchmarks.md").read_text()


@pytest.mark.parametrize(("on", "verdict"), [(970.0, "met"), (969.0, "**not met**")])
def test_the_fair_share_cost_line_holds_it_to_three_per_cent(on: float, verdict: str) -> None:
    figures = {
        ("this tree", "mlp", 64): Figure(on, on - 50, on + 50, 20.0),
        (FAIR_SHARE_OFF, "mlp", 64): Figure(1000.0, 950.0, 1040.0, 19.0),
    }
    line = fair_share_cost(figures, "this tree")
    assert line.endswith(f"(target: at most 3%: {verdict}).")
    assert "1,000 off (950-1,040)" in line
