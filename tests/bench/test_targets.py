"""The Targets table of the benchmark report: yes, no, or not judged when a quick run was
too short for a target's measurement."""

from __future__ import annotations

from typing import Any

import pytest

from report import targets_table
from results import BINARY, BINARY_JSON, GRPC, GRPC_FLOOR, SHM, LargeJson, Measurement, Report
from targets import MEMORY_RUN_S, QUICK_MEMORY_S, NotJudged, targets, verdict_cell
from transport_sections import binary_section, floor_line, grpc_section, shm_section

ROW = Measurement("x", "mlp", 16, 100.0, 1.0, 2.0, 0, 200)


def _report(
    *,
    seconds: float,
    growth_pct: float,
    quick: bool,
    binary: list[Measurement] | None = None,
    grpc_failures: dict[str, int] | None = None,
) -> Report:
    """A run with no matrix rows: the overload, large JSON and memory targets, and those
    of the ``binary`` rows given."""
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
        "binary": binary or [],
        "binary_rounds": 1,
        "grpc_failures": grpc_failures or {},
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


def _mlp(
    *,
    binary_per_s: tuple[float, float],
    grpc_per_s: tuple[float, float],
    p50_ms: tuple[float, float] = (1.0, 1.05),
    grpc_errors: int = 0,
) -> list[Measurement]:
    """HTTP binary and gRPC rows of ``mlp`` at 1 and 64 calls; ``p50_ms``: at 1 call."""
    rows = []
    for conns, binary, grpc in zip((1, 64), binary_per_s, grpc_per_s, strict=True):
        p50_binary, p50_grpc = p50_ms if conns == 1 else (20.0, 20.0)
        rows += [
            Measurement(BINARY, "mlp", conns, binary, p50_binary, 3.0, 0, 1000),
            Measurement(GRPC, "mlp", conns, grpc, p50_grpc, 3.0, grpc_errors, 1000),
        ]
    return rows


def _grpc_rows(report: Report) -> list[tuple[str, str, object]]:
    return [row for row in targets(report) if row[0].startswith("gRPC")]


def test_the_grpc_targets_met() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 2100.0))
    throughput, latency = _grpc_rows(_report(seconds=15, growth_pct=0, quick=True, binary=binary))
    assert throughput[0].startswith("gRPC unary >= HTTP binary req/s on `mlp`")
    assert throughput[1] == (
        "c=1: 950 vs 900 req/s = 1.06x; c=64: 2,100 vs 2,000 req/s = 1.05x; 0 gRPC errors"
    )
    assert throughput[2] is True
    assert latency == (
        "gRPC p50 at 1 call within 0.1 ms of HTTP binary on `mlp`",
        "1.05 vs 1.00 ms (+0.05 ms)",
        True,
    )


def test_grpc_slower_at_either_concurrency_misses_the_throughput_target() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 800.0))
    [throughput, _] = _grpc_rows(_report(seconds=15, growth_pct=0, quick=True, binary=binary))
    assert "c=64: 800 vs 2,000 req/s = 0.40x" in throughput[1]
    assert throughput[2] is False


def test_grpc_errors_miss_the_throughput_target() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 2100.0), grpc_errors=3)
    [throughput, _] = _grpc_rows(_report(seconds=15, growth_pct=0, quick=True, binary=binary))
    assert throughput[1].endswith("; 6 gRPC errors")
    assert throughput[2] is False


@pytest.mark.parametrize(
    ("p50_ms", "met"),
    [((0.87, 0.97), True), ((0.87, 0.98), False), ((1.2, 0.9), True)],
)
def test_the_p50_target_allows_a_tenth_of_a_millisecond(
    p50_ms: tuple[float, float], met: bool
) -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 2100.0), p50_ms=p50_ms)
    [_, latency] = _grpc_rows(_report(seconds=15, growth_pct=0, quick=True, binary=binary))
    assert latency[2] is met


def test_no_grpc_rows_no_grpc_targets() -> None:
    only_binary = [m for m in _mlp(binary_per_s=(1, 1), grpc_per_s=(1, 1)) if m.server == BINARY]
    report = _report(seconds=15, growth_pct=0, quick=True, binary=only_binary)
    assert _grpc_rows(report) == []


def test_the_grpc_table_puts_each_grpc_row_under_its_http_row() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 800.0))
    failures = {"UNAVAILABLE (503)": 4, "CANCELLED (499)": 1}
    lines = grpc_section(
        _report(seconds=15, growth_pct=0, quick=True, binary=binary, grpc_failures=failures)
    )
    rows = [line for line in lines if line.startswith("| `mlp`")]
    assert rows == [
        "| `mlp` | 1 | HTTP binary (wrk, 1 connection) | 900 | 1.00 | 3.00 | 0 |  |",
        "| `mlp` | 1 | gRPC unary (h2load, 1 connection x 1 call) | 950 | 1.05 | 3.00 | 0 "
        "| 1.06x req/s, p50 +0.05 ms |",
        "| `mlp` | 64 | HTTP binary (wrk, 64 connections) | 2,000 | 20.00 | 3.00 | 0 |  |",
        "| `mlp` | 64 | gRPC unary (h2load, 64 connections x 1 call) | 800 | 20.00 | 3.00 | 0 "
        "| 0.40x req/s, p50 +0.00 ms |",
    ]
    assert "gRPC calls not OK, over every run: CANCELLED (499) x 1, UNAVAILABLE (503) x 4." in lines


FLOOR = [
    Measurement(GRPC_FLOOR, "mlp", 1, 2150.0, 0.44, 0.9, 0, 4300),
    Measurement(GRPC_FLOOR, "mlp", 64, 1880.0, 30.0, 40.0, 0, 3760),
]


def test_the_grpc_targets_state_the_floor_beside_their_verdicts() -> None:
    binary = _mlp(binary_per_s=(1200.0, 2085.0), grpc_per_s=(950.0, 1500.0), p50_ms=(0.8, 1.1))
    report = _report(seconds=15, growth_pct=0, quick=True, binary=binary + FLOOR)
    throughput, latency = _grpc_rows(report)
    assert throughput[1].endswith(
        "; 0 gRPC errors; the grpc.aio floor itself: c=1: 2,150 req/s, c=64: 1,880 req/s"
    )
    assert throughput[2] is False
    assert latency[1] == "1.10 vs 0.80 ms (+0.30 ms); the grpc.aio floor itself: p50 0.44 ms"
    assert latency[2] is False


def test_the_floor_does_not_change_the_verdicts() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 2100.0))
    without = _grpc_rows(_report(seconds=15, growth_pct=0, quick=True, binary=binary))
    beside = _grpc_rows(_report(seconds=15, growth_pct=0, quick=True, binary=binary + FLOOR))
    assert [row[2] for row in beside] == [row[2] for row in without] == [True, True]


def test_the_grpc_table_puts_the_floor_under_tensorgates_grpc_row() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 800.0))
    lines = grpc_section(_report(seconds=15, growth_pct=0, quick=True, binary=binary + FLOOR))
    rows = [line for line in lines if line.startswith("| `mlp`")]
    assert rows[2] == (
        f"| `mlp` | 1 | {GRPC_FLOOR}, gRPC unary (h2load, 1 connection x 1 call) | 2,150 | "
        "0.44 | 0.90 | 0 | 2.39x req/s, p50 -0.56 ms |"
    )
    assert rows[5].startswith(f"| `mlp` | 64 | {GRPC_FLOOR}, gRPC unary (h2load, 64 connections")
    assert len(rows) == 6


def test_the_floor_line_gives_tensorgates_share_of_the_floor() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(1075.0, 1504.0))
    report = _report(seconds=15, growth_pct=0, quick=True, binary=binary + FLOOR)
    assert floor_line(report) == (
        "The grpc.aio floor itself on `mlp`: 1 call: 2,150 req/s, p50 0.44 ms (tensorgate "
        "gRPC: 50% of its req/s); 64 calls: 1,880 req/s, p50 30.00 ms (tensorgate gRPC: 80% "
        "of its req/s)."
    )
    assert floor_line(_report(seconds=15, growth_pct=0, quick=True, binary=binary)) is None


def _image(
    shm_per_s: dict[int, float], *, binary_per_s: float = 400.0, shm_errors: int = 0
) -> list[Measurement]:
    """HTTP binary (``binary_per_s`` at every count) and shared-memory rows of ``image``
    at the connection counts of ``shm_per_s``."""
    rows = []
    for conns, shm in shm_per_s.items():
        rows += [
            Measurement(BINARY, "image", conns, binary_per_s, 2.5, 4.0, 0, 1000),
            Measurement(SHM, "image", conns, shm, 1.5, 3.0, shm_errors, 1000),
        ]
    return rows


def _shm_rows(report: Report) -> list[tuple[str, str, object]]:
    return [row for row in targets(report) if row[0].startswith("shared memory")]


def _with(binary: list[Measurement]) -> Report:
    return _report(seconds=15, growth_pct=0, quick=True, binary=binary)


def test_the_shared_memory_target_met() -> None:
    [row] = _shm_rows(_with(_image({1: 620.0, 16: 900.0, 64: 100.0})))
    assert row == (
        "shared memory >= 1.5x HTTP binary req/s on `image` [1, 3, 224, 224] at 1 and 16 "
        "connections (same host), 0 errors",
        "c=1: 620 vs 400 req/s = 1.55x; c=16: 900 vs 400 req/s = 2.25x; 0 errors",
        True,
    )


@pytest.mark.parametrize(
    "shm_per_s",
    [{1: 599.0, 16: 900.0}, {1: 900.0, 16: 599.0}],
)
def test_shared_memory_short_of_1_5x_at_either_count_misses(shm_per_s: dict[int, float]) -> None:
    [row] = _shm_rows(_with(_image(shm_per_s)))
    assert row[2] is False


def test_exactly_1_5x_meets_and_64_connections_do_not_count() -> None:
    [row] = _shm_rows(_with(_image({1: 600.0, 16: 600.0, 64: 1.0})))
    assert row[2] is True


def test_shared_memory_errors_miss_the_target() -> None:
    [row] = _shm_rows(_with(_image({1: 900.0, 16: 900.0}, shm_errors=2)))
    assert row[1].endswith("; 4 errors")
    assert row[2] is False


def test_no_binary_answers_miss_the_target() -> None:
    [row] = _shm_rows(_with(_image({1: 0.0, 16: 0.0}, binary_per_s=0.0)))
    assert "c=1: 0 vs 0 req/s = nanx" in row[1]
    assert row[2] is False


def test_the_target_needs_both_connection_counts() -> None:
    assert _shm_rows(_with(_image({1: 900.0, 64: 900.0}))) == []
    assert _shm_rows(_with(_image({}))) == []


def test_the_shared_memory_table_sits_beside_http_binary() -> None:
    lines = shm_section(_with(_image({1: 620.0, 16: 900.0, 64: 800.0})))
    assert lines[0] == "## Shared memory"
    assert [line for line in lines if line.startswith("| `image`")] == [
        "| `image` | 1 | 400 | 2.50 | 4.00 | 620 | 1.50 | 3.00 | 0 | 1.55 |",
        "| `image` | 16 | 400 | 2.50 | 4.00 | 900 | 1.50 | 3.00 | 0 | 2.25 |",
        "| `image` | 64 | 400 | 2.50 | 4.00 | 800 | 1.50 | 3.00 | 0 | 2.00 |",
    ]


def test_no_shared_memory_rows_no_section() -> None:
    binary = _mlp(binary_per_s=(900.0, 2000.0), grpc_per_s=(950.0, 2100.0))
    assert shm_section(_with(binary)) == []


def test_the_binary_and_grpc_tables_show_every_measured_connection_count() -> None:
    image = [
        Measurement(kind, "image", conns, 100.0 * conns, 1.0, 2.0, 0, 1000)
        for conns in (1, 16, 64)
        for kind in (BINARY_JSON, BINARY, GRPC)
    ]
    report = _with(image)
    binary = [line for line in binary_section(report) if line.startswith("| `image`")]
    grpc = [line for line in grpc_section(report) if line.startswith("| `image`")]
    assert [line.split(" | ")[1] for line in binary] == ["1", "16", "64"]
    assert [line.split(" | ")[1] for line in grpc] == ["1", "1", "16", "16", "64", "64"]
