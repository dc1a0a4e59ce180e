"""Writes docs/benchmarks.md (tables, ratios, targets) and docs/benchmarks.png."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt

from wrk import WrkResult

NAIVE = "naive"
ON = "tensorgate"
OFF = "tensorgate, batching off"
TWO = "tensorgate, 2 workers"
CEILING = "onnxruntime in-process (ceiling)"
ACCESS_LOG_ON = "tensorgate, access log on"
ACCESS_LOG_OFF = "tensorgate, access log off"
REMOTE = "tensorgate -> remote tensorgate"
BINARY_JSON = "tensorgate JSON"
BINARY = "tensorgate binary"
KINDS = (NAIVE, OFF, ON, TWO, CEILING)


@dataclass(frozen=True)
class Measurement:
    """One server x model x connection count."""

    server: str
    model: str
    connections: int
    requests_per_s: float
    """Answers per second, errors included (what wrk reports)."""
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int

    @property
    def ok_per_s(self) -> float:
        """Successful (2xx) answers per second: what the tables, ratios and plot show."""
        if self.requests == 0:  # the in-process ceiling has no HTTP answers
            return self.requests_per_s
        return self.requests_per_s * (self.requests - self.errors) / self.requests


def median_of(server: str, model: str, conns: int, runs: list[WrkResult]) -> Measurement:
    """Median rate and latencies over the rounds; errors and requests summed."""
    return Measurement(
        server,
        model,
        conns,
        statistics.median(r.requests_per_s for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
        sum(r.requests for r in runs),
    )


@dataclass(frozen=True)
class Report:
    """Everything one run measured."""

    measurements: list[Measurement]
    binary: list[Measurement]
    """JSON and binary bodies (``tensorgate JSON`` / ``tensorgate binary``), same server."""
    binary_rounds: int
    access_log: list[Measurement]
    """``mlp`` with the access log on (``tensorgate``) and off, same run, in turns."""
    remote: list[Measurement]
    """``mlp`` local (``tensorgate``) and through a remote model (``REMOTE``), in turns."""
    overload: dict[str, float]
    memory: dict[str, float]
    best_kind: str
    capacity: float
    load_before: float
    load_after: float
    seconds_per_run: int
    rounds: int
    total_s: float
    quick: bool
    auth: bool
    cpu: str


def _find(report: Report, server: str, model: str, conns: int) -> Measurement | None:
    for m in report.measurements:
        if (m.server, m.model, m.connections) == (server, model, conns):
            return m
    return None


def _ratio(report: Report, kind: str, model: str, conns: int) -> float:
    ours, naive = _find(report, kind, model, conns), _find(report, NAIVE, model, conns)
    if ours is None or naive is None or naive.ok_per_s == 0:
        return math.nan
    return ours.ok_per_s / naive.ok_per_s


def _best(report: Report, model: str, conns: int) -> Measurement | None:
    candidates = [m for k in (ON, TWO) if (m := _find(report, k, model, conns))]
    return max(candidates, key=lambda m: m.ok_per_s, default=None)


def _targets(report: Report) -> list[tuple[str, str, bool]]:
    rows: list[tuple[str, str, bool]] = []
    for model, wanted in (("mlp", 3.0), ("wide", 5.0)):
        best, naive = _best(report, model, 64), _find(report, NAIVE, model, 64)
        if best and naive:
            ratio = best.ok_per_s / naive.ok_per_s
            rows.append(
                (
                    f"`{model}` at 64 connections >= {wanted:g}x naive req/s, 0 errors",
                    f"{best.ok_per_s:,.0f} vs {naive.ok_per_s:,.0f} req/s = "
                    f"{ratio:.2f}x ({best.server}), {best.errors} errors",
                    ratio >= wanted and best.errors == 0,
                )
            )
    ours, naive = _find(report, ON, "mlp", 1), _find(report, NAIVE, "mlp", 1)
    if ours and naive:
        gap = ours.p50_ms - naive.p50_ms
        rows.append(
            (
                "`mlp` p50 at 1 connection within 0.3 ms of naive",
                f"{ours.p50_ms:.2f} ms vs {naive.p50_ms:.2f} ms ({gap:+.2f} ms)",
                gap <= 0.3,
            )
        )
    o = report.overload
    rows.append(
        (
            "overload (4x capacity, Retry-After honoured): only 200/503",
            f"{o['ok']:.0f} x 200, {o['rejected_503']:.0f} x 503, {o['other_statuses']:.0f} other",
            o["other_statuses"] == 0,
        )
    )
    share = o["goodput_per_s"] / o["capacity_per_s"]
    rows.append(
        (
            "overload goodput >= 80% of capacity",
            f"{o['goodput_per_s']:,.0f} of {o['capacity_per_s']:,.0f} req/s = {share:.0%}",
            share >= 0.8,
        )
    )
    rows.append(
        (
            "overload: p99 of admitted requests bounded by the queue bound",
            f"server side: p99 time in queue {o['server_p99_queue_wait_ms']:.0f} ms vs bound "
            f"{o['queue_bound_ms']:.0f} ms ((128 queued + 64 running) / goodput); client side "
            f"p99 {o['p99_admitted_ms']:.0f} ms",
            o["server_p99_queue_wait_ms"] <= o["queue_bound_ms"],
        )
    )
    one, two = _find(report, ON, "mlp", 64), _find(report, TWO, "mlp", 64)
    if one and two:
        rows.append(
            (
                "1 vs 2 worker processes reported (`mlp`, 64 connections)",
                f"{one.ok_per_s:,.0f} vs {two.ok_per_s:,.0f} req/s",
                True,
            )
        )
    rows += _binary_targets(report)
    rows += _access_log_targets(report)
    m = report.memory
    rows.append(
        (
            f"RSS flat (<= 5% growth) over {m['seconds']:.0f} s at 70% of capacity",
            f"{m['rss_start_mib']:.1f} -> {m['rss_end_mib']:.1f} MiB ({m['growth_pct']:+.1f}%), "
            f"{m['achieved_per_s']:,.0f} req/s, {m['errors']:.0f} not 200 "
            f"({m['rejected_503']:.0f} x 503)",
            m["growth_pct"] <= 5 and m["seconds"] >= 120,
        )
    )
    return rows


def _binary_pair(report: Report, model: str, conns: int) -> tuple[Measurement, Measurement] | None:
    found = {(m.server, m.model, m.connections): m for m in report.binary}
    as_json = found.get((BINARY_JSON, model, conns))
    binary = found.get((BINARY, model, conns))
    return (as_json, binary) if as_json and binary else None


def _binary_targets(report: Report) -> list[tuple[str, str, bool]]:
    rows: list[tuple[str, str, bool]] = []
    if pair := _binary_pair(report, "image", 64):
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
    pairs = [p for c in (1, 64) if (p := _binary_pair(report, "mlp", c))]
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


def _access_log_pair(report: Report, conns: int) -> tuple[Measurement, Measurement] | None:
    found = {(m.server, m.connections): m for m in report.access_log}
    on, off = found.get((ACCESS_LOG_ON, conns)), found.get((ACCESS_LOG_OFF, conns))
    return (on, off) if on and off else None


def _access_log_targets(report: Report) -> list[tuple[str, str, bool]]:
    pair = _access_log_pair(report, 64)
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


def _access_log_table(report: Report) -> list[str]:
    lines = [
        "| conns | on: ok req/s | p50 ms | p99 ms | off: ok req/s | p50 ms | p99 ms | on / off |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in (1, 64):
        if (pair := _access_log_pair(report, conns)) is None:
            continue
        on, off = pair
        lines.append(
            f"| {conns} | {on.ok_per_s:,.0f} | {on.p50_ms:.2f} | {on.p99_ms:.2f} | "
            f"{off.ok_per_s:,.0f} | {off.p50_ms:.2f} | {off.p99_ms:.2f} | "
            f"{on.ok_per_s / off.ok_per_s:.0%} |"
        )
    return [*lines, ""]


def _remote_table(report: Report) -> list[str]:
    found = {(m.server, m.connections): m for m in report.remote}
    lines = [
        "| conns | local ok req/s | p50 ms | p99 ms | through the hop ok req/s | p50 ms | "
        "p99 ms | hop / local | p50 added ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in (1, 64):
        local, hop = found.get((ON, conns)), found.get((REMOTE, conns))
        if local is None or hop is None:
            continue
        lines.append(
            f"| {conns} | {local.ok_per_s:,.0f} | {local.p50_ms:.2f} | {local.p99_ms:.2f} | "
            f"{hop.ok_per_s:,.0f} | {hop.p50_ms:.2f} | {hop.p99_ms:.2f} | "
            f"{hop.ok_per_s / local.ok_per_s:.0%} | {hop.p50_ms - local.p50_ms:+.2f} |"
        )
    return [*lines, ""]


def _binary_table(report: Report) -> list[str]:
    lines = [
        "| model | conns | JSON ok req/s | p50 ms | p99 ms | binary ok req/s | p50 ms | "
        "p99 ms | errors | binary / JSON |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model in ("mlp", "image"):
        for conns in (1, 64):
            if (pair := _binary_pair(report, model, conns)) is None:
                continue
            j, b = pair
            lines.append(
                f"| `{model}` | {conns} | {j.ok_per_s:,.0f} | {j.p50_ms:.2f} | {j.p99_ms:.2f} | "
                f"{b.ok_per_s:,.0f} | {b.p50_ms:.2f} | {b.p99_ms:.2f} | {j.errors + b.errors} | "
                f"{b.ok_per_s / j.ok_per_s:.2f} |"
            )
    return [*lines, ""]


def _table(report: Report, model: str) -> list[str]:
    conns = sorted({m.connections for m in report.measurements if m.model == model})
    lines = [
        f"### `{model}`",
        "",
        "| server | conns | ok req/s | p50 ms | p99 ms | errors | x naive |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        for c in conns:
            m = _find(report, kind, model, c)
            if m is None:
                continue
            ratio = _ratio(report, kind, model, c) if kind != NAIVE else 1.0
            unit = " (rows/s)" if kind == CEILING else ""
            lines.append(
                f"| {kind}{unit} | {c} | {m.ok_per_s:,.0f} | {m.p50_ms:.2f} | "
                f"{m.p99_ms:.2f} | {m.errors} | {ratio:.2f} |"
            )
    return [*lines, ""]


def _plot(report: Report, path: Path) -> None:
    models = sorted({m.model for m in report.measurements}, key=["mlp", "digits", "wide"].index)
    figure, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4))
    for axis, model in zip(axes, models, strict=True):
        for kind in KINDS:
            points = sorted(
                (m.connections, m.ok_per_s)
                for m in report.measurements
                if m.server == kind and m.model == model
            )
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(
                    xs, ys, marker="o", label=kind, linestyle="--" if kind == CEILING else "-"
                )
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_title(model)
        axis.set_xlabel("connections (ceiling: batch size)")
        axis.set_ylabel("successful requests/s (ceiling: rows/s)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(report: Report, out: Path) -> None:
    """Write the markdown page and the plot into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _plot(report, out / "benchmarks.png")
    targets = _targets(report)
    o = report.overload
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/run.py); do not edit by hand. "
        + ("**Quick mode: short runs, indicative only.**" if report.quick else ""),
        "",
        f"Machine: {report.cpu}, {_cores()} cores, shared with other work: one-minute load "
        f"average {report.load_before:.2f} before the run and {report.load_after:.2f} after. "
        f"Every server runs on 127.0.0.1; load comes from Debian's `wrk` (one thread per 64 "
        f"connections, {report.seconds_per_run} s per run). "
        + (
            f"Each figure is the median of {report.rounds} rounds in which the servers take "
            "turns, so that every server meets the host's slow and quick moments alike; "
            "errors are summed over the rounds. "
            if report.rounds > 1
            else "One run per server and connection count, servers taking turns. "
        )
        + f"Total time {report.total_s / 60:.1f} min.",
        "",
        "- **naive**: bench/naive_server.py, the fixed baseline (one `async def` FastAPI route, "
        "Pydantic body `x: list[list[float]]`, one ONNX Runtime call per request, one uvicorn "
        "worker, no auth).",
        "- **tensorgate**: `tensorgate serve` as users run it: default settings (log level "
        "`info`, the access log on, one JSON line per request into the server's log file), "
        "the shipped model configs, batching on, Prometheus metrics collected and `/metrics` "
        "served"
        + (", JWT auth on" if report.auth else ", auth not enabled (not merged at run time)")
        + "; **2 workers** is the same with `--workers 2`; **batching off** sets "
        "`batching.enabled: false` (one ONNX Runtime call per request).",
        "- **ceiling**: ONNX Runtime called in-process with a batch as large as the "
        "connection count (rows/s and call latency).",
        "- `wide` is generated by the benchmark (float32 [batch, 256] -> 2048 -> 2048 -> 2048 -> "
        "10, fixed seed) into a temporary repository, configured like the demo `mlp` "
        "(`intra_op_threads: 1`).",
        "",
        "![requests per second](benchmarks.png)",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in targets),
        "",
        "## Throughput and latency",
        "",
        "`ok req/s` counts successful answers only; `errors` are non-2xx answers (503 when a "
        "bounded queue is full) and socket errors; latencies are wrk's, over all answers.",
        "",
    ]
    for model in ("mlp", "digits", "wide"):
        lines += _table(report, model)
    lines += [
        "## Binary tensor data",
        "",
        "The one-worker tensorgate server (batching on, auth and metrics on) with the same "
        "input sent as a JSON body and as a binary body (Triton's binary tensor data "
        "extension: `Inference-Header-Content-Length`, `binary_data_size`, and "
        "`binary_data_output: true`, as `tritonclient.http` sends by default); the two take "
        f"turns in every round ({report.binary_rounds} rounds, medians). `image` is "
        "generated by the benchmark: float32 "
        "[batch, 3, 224, 224] -> global average pool -> 3 x 10 dense layer, so reading the "
        "150,528 numbers of a request (six decimal digits each in JSON, four bytes each in "
        "binary) is most of its cost.",
        "",
        *_binary_table(report),
        "## Access log",
        "",
        "`mlp` on two one-worker servers started for these rows alone (so that both have "
        "served the same traffic): one with the default access log (one JSON line per "
        "request, written to the server's log file), one started with "
        "`TENSORGATE_ACCESS_LOG=false`; the two take turns in every round "
        f"({report.binary_rounds} rounds, medians).",
        "",
        *_access_log_table(report),
        "## Remote backend",
        "",
        "`mlp` served in-process by the one-worker tensorgate, and by a second one-worker "
        "tensorgate whose `mlp` is a remote model (binary tensors) calling the first over "
        "loopback: the cost of the hop, both processes on this machine's cores "
        f"({report.binary_rounds} rounds in turns, medians).",
        "",
        *_remote_table(report),
        "## Overload",
        "",
        "A paced asyncio client (bench/paced_client.py) first measured the one-worker "
        f"server's capacity for `mlp` as it sees it: {o['capacity_per_s']:,.0f} req/s at 64 "
        f"connections (wrk, lighter, measured {o['wrk_capacity_per_s']:,.0f}; the client "
        "shares the 2 cores with the server). It then offered "
        f"{o['offered_per_s']:,.0f} requests/s (4x) and managed {o['attempts_per_s']:,.0f} "
        "attempts/s; each request that got 503 waited its `Retry-After` and tried once "
        "more. The client keeps at most 256 connections open (a request waiting out its "
        "`Retry-After` holds none); an arrival finding all of them busy is not sent. "
        "Queue bound: 128 requests. The "
        "bound on admitted latency is checked server side: the p99 of "
        "`tensorgate_queue_seconds` (interpolated in its histogram bucket, as "
        "`histogram_quantile` does) against the time to serve a full queue plus the batch "
        "running at the measured goodput. The client's own p99 also counts time in socket "
        "buffers and in the client itself.",
        "",
        f"- answers: {o['ok']:.0f} x 200, {o['rejected_503']:.0f} x 503, "
        f"{o['other_statuses']:.0f} other; {o['client_dropped']:.0f} arrivals not sent "
        "(every client connection busy)",
        f"- goodput {o['goodput_per_s']:,.0f} req/s; admitted p50 "
        f"{o['p50_admitted_ms']:.1f} ms, p99 {o['p99_admitted_ms']:.1f} ms",
        "",
        "## Memory",
        "",
        "Resident memory of the one-worker server while the paced client offered `mlp` "
        "requests at 70% of the capacity it measured "
        f"for {report.memory['seconds']:.0f} s: {report.memory['rss_start_mib']:.1f} MiB "
        f"after warm-up, {report.memory['rss_end_mib']:.1f} MiB at the end "
        f"({report.memory['growth_pct']:+.1f}%).",
        "",
    ]
    (out / "benchmarks.md").write_text("\n".join(lines))


def _cores() -> int:
    import os

    return os.cpu_count() or 0
