"""The Targets table of docs/benchmarks.md: each target an issue set, its figures, met
or not. Every row is (target, measured, verdict); a quick run (``make bench-quick``) too
short for a target's measurement leaves it not judged rather than failed."""

from __future__ import annotations

import math
from dataclasses import dataclass

from results import (
    ACCESS_LOG_OFF,
    ACCESS_LOG_ON,
    BINARY,
    BINARY_JSON,
    DEFAULT,
    GRPC,
    GRPC_FLOOR,
    NAIVE,
    NAIVE_THREAD,
    ON,
    SHM,
    STARLETTE_FLOOR,
    Measurement,
    Report,
)

MEMORY_RUN_S = 120.0
"""How long the memory target's run lasts in ``make bench``."""
QUICK_MEMORY_S = 15.0
"""The same run in ``make bench-quick``: too short to judge the target."""
SHM_CONNECTIONS, SHM_SHARE = (1, 16), 1.5  # issue 22's concurrent clients and req/s share


@dataclass(frozen=True)
class NotJudged:
    """A target this run could not judge, and why."""

    reason: str


Verdict = bool | NotJudged
Target = tuple[str, str, Verdict]


def find(report: Report, server: str, model: str, conns: int) -> Measurement | None:
    """The main matrix's row for ``server``, ``model`` and ``conns``, if measured."""
    for m in report.measurements:
        if (m.server, m.model, m.connections) == (server, model, conns):
            return m
    return None


def _best(report: Report, model: str, conns: int) -> Measurement | None:
    candidates = [m for k in (ON, DEFAULT) if (m := find(report, k, model, conns))]
    return max(candidates, key=lambda m: m.ok_per_s, default=None)


def targets(report: Report) -> list[Target]:
    """Every target, in the order of the table."""
    return [
        *_throughput_targets(report),
        *_issue_18_targets(report),
        *_overload_targets(report),
        *_binary_targets(report),
        *_grpc_targets(report),
        *_shm_targets(report),
        *_access_log_targets(report),
        *two_subject_targets(report),
        _memory_target(report),
    ]


def _throughput_targets(report: Report) -> list[Target]:
    rows: list[Target] = []
    for model, wanted in (("mlp", 3.0), ("wide", 5.0)):
        best, naive = _best(report, model, 64), find(report, NAIVE, model, 64)
        if best and naive:
            ratio = best.ok_per_s / naive.ok_per_s
            rows.append(
                (
                    f"`{model}` at 64 connections >= {wanted:g}x naive (ORT on the event loop) "
                    "req/s, 0 errors",
                    f"{best.ok_per_s:,.0f} vs {naive.ok_per_s:,.0f} req/s = "
                    f"{ratio:.2f}x ({best.server}), {best.errors} errors",
                    ratio >= wanted and best.errors == 0,
                )
            )
    ours, naive = find(report, ON, "mlp", 1), find(report, NAIVE, "mlp", 1)
    if ours and naive:
        gap = ours.p50_ms - naive.p50_ms
        rows.append(
            (
                "`mlp` p50 at 1 connection within 0.3 ms of naive (ORT on the event loop)",
                f"{ours.p50_ms:.2f} ms vs {naive.p50_ms:.2f} ms ({gap:+.2f} ms)",
                gap <= 0.3,
            )
        )
    one, default = find(report, ON, "mlp", 64), find(report, DEFAULT, "mlp", 64)
    if one and default:
        rows.append(
            (
                "1 vs default worker processes reported (`mlp`, 64 connections)",
                f"{one.ok_per_s:,.0f} vs {default.ok_per_s:,.0f} req/s "
                f"({report.default_workers} "
                f"process{'es' if report.default_workers != 1 else ''} by default)",
                True,
            )
        )
    return rows


def _at_least(
    name: str, ours: Measurement | None, theirs: Measurement | None, share: float
) -> Target | None:
    """``ours`` serves at least ``share`` times the req/s of ``theirs``, without errors."""
    if ours is None or theirs is None:
        return None
    ratio = ours.ok_per_s / theirs.ok_per_s if theirs.ok_per_s else math.nan
    return (
        name,
        f"{ours.ok_per_s:,.0f} vs {theirs.ok_per_s:,.0f} req/s = {ratio:.2f}x, "
        f"{ours.errors} errors",
        ratio >= share and ours.errors == 0,
    )


def _issue_18_targets(report: Report) -> list[Target]:
    """Issue 18: near the floor of a Python server, well above the naive servers, and
    large JSON bodies neither slow to decode nor stalling small requests."""
    rows = [
        _at_least(
            "`digits`, one process, 64 connections: >= 70% of the plain Starlette route's req/s",
            find(report, ON, "digits", 64),
            find(report, STARLETTE_FLOOR, "digits", 64),
            0.7,
        )
    ]
    pairs = [
        (model, ours, naive)
        for model in ("mlp", "digits")
        if (ours := find(report, ON, model, 1)) and (naive := find(report, NAIVE, model, 1))
    ]
    if pairs:
        rows.append(
            (
                "p50 at 1 connection no higher than naive with ORT on the event loop "
                "(`mlp`, `digits`; tensorgate one process)",
                "; ".join(
                    f"`{model}` {ours.p50_ms:.2f} vs {naive.p50_ms:.2f} ms"
                    for model, ours, naive in pairs
                ),
                all(ours.p50_ms <= naive.p50_ms for _, ours, naive in pairs),
            )
        )
    default = find(report, DEFAULT, "mlp", 64)
    for kind, share in ((NAIVE_THREAD, 6.0), (NAIVE, 4.0)):
        rows.append(
            _at_least(
                f"`mlp`, default workers, 64 connections: >= {share:g}x {kind}",
                default,
                find(report, kind, "mlp", 64),
                share,
            )
        )
    large = report.large_json
    decode = large.decode_ms / large.floor_ms if large.floor_ms else math.nan
    stall = large.during.p99_ms / large.alone.p99_ms if large.alone.p99_ms else math.nan
    rows += [
        (
            f"large JSON ({large.body_bytes / 1e6:.1f} MB, {large.rows:,} `mlp` rows): "
            "decode <= 1.5x orjson.loads + np.asarray",
            f"{large.decode_ms:.0f} vs {large.floor_ms:.0f} ms = {decode:.2f}x",
            decode <= 1.5,
        ),
        (
            "one-row `mlp` p99 at 16 connections while one client sends large JSON "
            "requests <= 3x its p99 alone",
            f"{large.during.p99_ms:.2f} vs {large.alone.p99_ms:.2f} ms = {stall:.2f}x "
            f"({large.large_ok} of {large.large_answered} large requests answered 200; "
            f"{large.during.errors + large.alone.errors} small errors)",
            stall <= 3 and large.large_ok == large.large_answered > 0,
        ),
    ]
    return [row for row in rows if row is not None]


def _overload_targets(report: Report) -> list[Target]:
    o = report.overload
    share = o["goodput_per_s"] / o["capacity_per_s"]
    return [
        (
            "overload (4x capacity, Retry-After honoured): only 200/503",
            f"{o['ok']:.0f} x 200, {o['rejected_503']:.0f} x 503, {o['other_statuses']:.0f} other",
            o["other_statuses"] == 0,
        ),
        (
            "overload goodput >= 80% of capacity",
            f"{o['goodput_per_s']:,.0f} of {o['capacity_per_s']:,.0f} req/s = {share:.0%}",
            share >= 0.8,
        ),
        (
            "overload: p99 of admitted requests bounded by the queue bound",
            f"server side: p99 time in queue {o['server_p99_queue_wait_ms']:.0f} ms vs bound "
            f"{o['queue_bound_ms']:.0f} ms ((128 queued + 64 running) / goodput); client side "
            f"p99 {o['p99_admitted_ms']:.0f} ms",
            o["server_p99_queue_wait_ms"] <= o["queue_bound_ms"],
        ),
    ]


def _pair(
    report: Report, first: str, second: str, model: str, conns: int
) -> tuple[Measurement, Measurement] | None:
    found = {(m.server, m.model, m.connections): m for m in report.binary}
    a, b = found.get((first, model, conns)), found.get((second, model, conns))
    return (a, b) if a and b else None


def binary_pair(report: Report, model: str, conns: int) -> tuple[Measurement, Measurement] | None:
    """The JSON and the binary row of ``model`` at ``conns``, when both were measured."""
    return _pair(report, BINARY_JSON, BINARY, model, conns)


def grpc_pair(report: Report, model: str, conns: int) -> tuple[Measurement, Measurement] | None:
    """The HTTP binary and the gRPC row of ``model`` at ``conns``, when both were measured."""
    return _pair(report, BINARY, GRPC, model, conns)


def shm_pair(report: Report, model: str, conns: int) -> tuple[Measurement, Measurement] | None:
    """The HTTP binary and the shared-memory row of ``model`` at ``conns``, if measured."""
    return _pair(report, BINARY, SHM, model, conns)


def grpc_floor(report: Report, conns: int) -> Measurement | None:
    """The gRPC floor's ``mlp`` row at ``conns``, when measured."""
    found = {(m.server, m.model, m.connections): m for m in report.binary}
    return found.get((GRPC_FLOOR, "mlp", conns))


FLOOR_SAYS = "; the grpc.aio floor itself: "
"""What opens the gRPC floor's figures in a gRPC target's measured column."""


def _floor_rates(report: Report) -> str:
    rows = [m for c in (1, 64) if (m := grpc_floor(report, c))]
    figures = ", ".join(f"c={m.connections}: {m.ok_per_s:,.0f} req/s" for m in rows)
    return FLOOR_SAYS + figures if rows else ""


def _floor_p50(report: Report) -> str:
    floor = grpc_floor(report, 1)
    return f"{FLOOR_SAYS}p50 {floor.p50_ms:.2f} ms" if floor else ""


def _binary_targets(report: Report) -> list[Target]:
    rows: list[Target] = []
    if pair := binary_pair(report, "image", 64):
        as_json, binary = pair
        ratio = binary.ok_per_s / as_json.ok_per_s if as_json.ok_per_s else math.inf
        rows.append(
            (
                "binary >= 3x JSON req/s on `image` [N, 3, 224, 224] at 64 connections",
                f"{binary.ok_per_s:,.0f} vs {as_json.ok_per_s:,.0f} req/s = {ratio:.2f}x, "
                f"{binary.errors + as_json.errors} errors",
                ratio >= 3 and binary.errors == as_json.errors == 0,
            )
        )
    pairs = [p for c in (1, 64) if (p := binary_pair(report, "mlp", c))]
    if pairs:
        rows.append(
            (
                "binary never slower than JSON on `mlp` (1 and 64 connections)",
                "; ".join(
                    f"c={j.connections}: {b.ok_per_s:,.0f} vs {j.ok_per_s:,.0f} req/s "
                    f"= {b.ok_per_s / j.ok_per_s:.2f}x"
                    for j, b in pairs
                ),
                all(b.ok_per_s >= j.ok_per_s for j, b in pairs),
            )
        )
    return rows


def _grpc_targets(report: Report) -> list[Target]:
    """Issue 21: unary gRPC serves ``mlp`` at least as fast as HTTP binary, and its p50 at
    one call is within 0.1 ms of HTTP's (binary, the closest HTTP body to gRPC's)."""
    rows: list[Target] = []
    pairs = [p for c in (1, 64) if (p := grpc_pair(report, "mlp", c))]
    if pairs:
        errors = sum(g.errors for _, g in pairs)
        rows.append(
            (
                "gRPC unary >= HTTP binary req/s on `mlp` (1 and 64 concurrent calls), "
                "every gRPC call OK",
                "; ".join(
                    f"c={b.connections}: {g.ok_per_s:,.0f} vs {b.ok_per_s:,.0f} req/s "
                    f"= {g.ok_per_s / b.ok_per_s if b.ok_per_s else math.nan:.2f}x"
                    for b, g in pairs
                )
                + f"; {errors} gRPC errors"
                + _floor_rates(report),
                all(g.ok_per_s >= b.ok_per_s for b, g in pairs) and errors == 0,
            )
        )
    if pair := grpc_pair(report, "mlp", 1):
        binary, grpc = pair
        gap = grpc.p50_ms - binary.p50_ms
        rows.append(
            (
                "gRPC p50 at 1 call within 0.1 ms of HTTP binary on `mlp`",
                f"{grpc.p50_ms:.2f} vs {binary.p50_ms:.2f} ms ({gap:+.2f} ms)" + _floor_p50(report),
                round(gap, 3) <= 0.1,  # wrk and h2load give microseconds at best
            )
        )
    return rows


def _shm_targets(report: Report) -> list[Target]:
    """Issue 22: shared memory >= 1.5x HTTP binary req/s on `image` at 1 and 16 connections."""
    pairs = [p for c in SHM_CONNECTIONS if (p := shm_pair(report, "image", c))]
    if len(pairs) < len(SHM_CONNECTIONS):
        return []
    errors = sum(b.errors + s.errors for b, s in pairs)
    return [
        (
            f"shared memory >= {SHM_SHARE:g}x HTTP binary req/s on `image` [1, 3, 224, 224] at "
            f"{' and '.join(map(str, SHM_CONNECTIONS))} connections (same host), 0 errors",
            "; ".join(
                f"c={b.connections}: {s.ok_per_s:,.0f} vs {b.ok_per_s:,.0f} req/s "
                f"= {s.ok_per_s / (b.ok_per_s or math.nan):.2f}x"
                for b, s in pairs
            )
            + f"; {errors} errors",
            errors == 0 and all(0 < SHM_SHARE * b.ok_per_s <= s.ok_per_s for b, s in pairs),
        )
    ]


def access_log_pair(report: Report, conns: int) -> tuple[Measurement, Measurement] | None:
    """The access log on and off rows at ``conns``, when both were measured."""
    found = {(m.server, m.connections): m for m in report.access_log}
    on, off = found.get((ACCESS_LOG_ON, conns)), found.get((ACCESS_LOG_OFF, conns))
    return (on, off) if on and off else None


def _access_log_targets(report: Report) -> list[Target]:
    pair = access_log_pair(report, 64)
    if pair is None:
        return []
    on, off = pair
    share = on.ok_per_s / off.ok_per_s if off.ok_per_s else math.nan
    return [
        (
            "access log on >= 90% of the req/s with it off (`mlp`, 64 connections)",
            f"{on.ok_per_s:,.0f} vs {off.ok_per_s:,.0f} req/s = {share:.0%}",
            share >= 0.9,
        )
    ]


def two_subject_targets(report: Report) -> list[Target]:
    """Issue 20: a polite caller beside a flood keeps >= 95% 200s, >= half its goodput
    alone and a p99 within 3x its p99 alone (or + 20 ms), with each worker count, and no
    request of either caller goes unanswered."""
    return [
        (
            f"polite caller (4 connections) beside a 256-connection flood, {row.server}: "
            ">= 95% answered 200, >= 50% of its goodput alone, p99 <= 3x alone or + 20 ms, "
            "every request of both callers answered within 30 s",
            f"{row.beside_ok_share:.1%} answered 200; {row.beside_ok_per_s:,.0f} vs "
            f"{row.alone_ok_per_s:,.0f} ok req/s = {row.goodput_kept:.0%}; p99 "
            f"{row.beside_p99_ms:.1f} vs {row.alone_p99_ms:.1f} ms (bound "
            f"{row.p99_bound_ms:.1f} ms); {row.unanswered} unanswered",
            row.met,
        )
        for row in report.two_subjects
    ]


def _memory_target(report: Report) -> Target:
    m = report.memory
    verdict: Verdict = m["growth_pct"] <= 5
    if m["seconds"] < MEMORY_RUN_S:
        verdict = NotJudged(
            f"run too short ({m['seconds']:.0f} s of the {MEMORY_RUN_S:.0f} s needed)"
        )
    return (
        f"RSS flat (<= 5% growth) over {MEMORY_RUN_S:.0f} s at 70% of capacity",
        f"{m['rss_start_mib']:.1f} -> {m['rss_end_mib']:.1f} MiB ({m['growth_pct']:+.1f}%) "
        f"over {m['seconds']:.0f} s, {m['achieved_per_s']:,.0f} req/s, {m['errors']:.0f} not "
        f"200 ({m['rejected_503']:.0f} x 503)",
        verdict,
    )


def verdict_cell(verdict: Verdict) -> str:
    """The ``met`` column: yes, **no**, or why the target was not judged."""
    if isinstance(verdict, NotJudged):
        return f"not judged: {verdict.reason}"
    return "yes" if verdict else "**no**"
