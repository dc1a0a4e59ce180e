"""Writes docs/benchmarks.md (tables, ratios, targets) and docs/benchmarks.png."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt

from how_to_run import AB_AND_SOAK, HOW_TO_RUN
from results import (
    ASGI_FLOOR,
    CEILING,
    DEFAULT,
    KINDS,
    LARGE_ALONE,
    LARGE_DURING,
    NAIVE,
    NAIVE_THREAD,
    ON,
    REMOTE,
    STARLETTE_FLOOR,
    Report,
)
from targets import (
    access_log_pair,
    find,
    targets,
    verdict_cell,
)
from transport_sections import binary_section, grpc_section, shm_section

DASHED = (CEILING, ASGI_FLOOR, STARLETTE_FLOOR)
"""Rows drawn dashed in the plot: bounds, not servers of a model."""


def _ratio(report: Report, kind: str, model: str, conns: int) -> float:
    ours, naive = find(report, kind, model, conns), find(report, NAIVE, model, conns)
    if ours is None or naive is None or naive.ok_per_s == 0:
        return math.nan
    return ours.ok_per_s / naive.ok_per_s


def targets_table(report: Report) -> list[str]:
    """The Targets table: each target, its figures, and yes, **no** or not judged."""
    return [
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {name} | {value} | {verdict_cell(ok)} |" for name, value, ok in targets(report)),
        "",
    ]


def _access_log_table(report: Report) -> list[str]:
    lines = [
        "| conns | on: ok req/s | p50 ms | p99 ms | off: ok req/s | p50 ms | p99 ms | on / off |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in (1, 64):
        if (pair := access_log_pair(report, conns)) is None:
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


def _large_json_section(report: Report) -> list[str]:
    large = report.large_json
    rows = [
        (LARGE_ALONE, large.alone),
        (LARGE_DURING, large.during),
    ]
    return [
        "## Large JSON requests",
        "",
        f"The largest JSON request tensorgate takes: {large.rows:,} `mlp` rows (six decimal "
        f"digits a number) in {large.body_bytes:,} bytes, under the 16 MiB body limit. "
        "Decode, in the benchmark's process (bench/large_json_rows.py): tensorgate's request "
        "codec (the one the inference route calls: envelope, checks against `mlp`'s "
        "signature, tensors) against the floor of `orjson.loads` then `np.asarray(..., "
        f"float32)` of the data; the two take turns, medians of {large.rounds} rounds: "
        f"**{large.decode_ms:.0f} ms** against **{large.floor_ms:.0f} ms** "
        f"({large.decode_ms / large.floor_ms:.2f}x).",
        "",
        f"Stall: one-row `mlp` requests from wrk at 16 connections to the one-process "
        "tensorgate, alone and while one more client (a thread of the benchmark, one "
        "keep-alive connection) sends the large body again as soon as each answer is read; "
        f"the two take turns ({large.rounds} rounds, medians). The large requests: "
        f"{large.large_answered} answered, {large.large_ok} with 200, median "
        f"{large.large_p50_ms:.0f} ms each.",
        "",
        "| one-row `mlp`, 16 connections | ok req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {m.ok_per_s:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} |"
            for label, m in rows
        ),
        "",
    ]


def _two_subjects_section(report: Report) -> list[str]:
    rows = report.two_subjects
    if not rows:
        return []
    return [
        "## Two subjects (fair share)",
        "",
        "One caller (token subject `polite`) at 4 closed-loop connections on `mlp`, alone "
        "and then beside another (`flood`) at 256 connections that sends again as soon as "
        "each answer comes, 503s included (it ignores `Retry-After`), from a process of "
        "its own (bench/fair_share_rows.py). Default settings (fair share on); the "
        "one-process server and one started with `--workers 2` for these rows. Polite "
        f"runs of {rows[0].seconds:g} s; {rows[0].rounds} "
        f"round{'s' if rows[0].rounds != 1 else ''} of alone then beside, medians; the 200 "
        "share counts every round. p99 is of the polite "
        "caller's 200 answers, measured by its client. `unanswered` counts the requests of "
        "both callers, beside the flood in every round, that had no answer within 30 s.",
        "",
        "| server | alone: ok req/s | p99 ms | 200 share | beside the flood: ok req/s | "
        "p99 ms | 200 share | kept | flood ok req/s | flood 503 share | unanswered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r.server} | {r.alone_ok_per_s:,.0f} | {r.alone_p99_ms:.1f} | "
            f"{r.alone_ok_share:.1%} | {r.beside_ok_per_s:,.0f} | {r.beside_p99_ms:.1f} | "
            f"{r.beside_ok_share:.1%} | {r.goodput_kept:.0%} | {r.flood_ok_per_s:,.0f} | "
            f"{r.flood_503_share:.0%} | {r.unanswered} |"
            for r in rows
        ),
        "",
    ]


def _table(report: Report, model: str) -> list[str]:
    conns = sorted({m.connections for m in report.measurements if m.model == model})
    lines = [
        f"### `{model}`",
        "",
        "| server | conns | ok req/s | p50 ms | p99 ms | errors | x naive (event loop) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        for c in conns:
            m = find(report, kind, model, c)
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
                style = "--" if kind in DASHED else "-"
                # One colour per server in every panel, whichever servers a model has.
                color = f"C{KINDS.index(kind)}"
                axis.plot(xs, ys, marker="o", label=kind, linestyle=style, color=color)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_title(model)
        axis.set_xlabel("connections (ceiling: batch size)")
        axis.set_ylabel("successful requests/s (ceiling: rows/s)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(report: Report, out: Path) -> None:
    """Write the markdown page and the plot into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _plot(report, out / "benchmarks.png")
    o = report.overload
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/run.py); do not edit by hand. "
        + ("**Quick mode: short runs, indicative only.**" if report.quick else ""),
        "",
        HOW_TO_RUN,
        "",
        f"Machine: {report.cpu}, {_cores()} cores, shared with other work: one-minute load "
        f"average {report.load_before:.2f} before the run and {report.load_after:.2f} after. "
        f"Every server runs on 127.0.0.1; load comes from Debian's `wrk` (one thread per 64 "
        f"connections, {report.seconds_per_run} s per run; the gRPC rows from `h2load`). "
        + (
            f"Each figure is the median of {report.rounds} rounds in which the servers take "
            "turns, so that every server meets the host's slow and quick moments alike; "
            "errors are summed over the rounds. "
            if report.rounds > 1
            else "One run per server and connection count, servers taking turns. "
        )
        + f"Total time {report.total_s / 60:.1f} min.",
        "",
        f"- **{NAIVE}**: bench/naive_server.py, the fixed baseline (one `async def` FastAPI "
        "route, Pydantic body `x: list[list[float]]`, one ONNX Runtime call per request on "
        "the event loop, one uvicorn worker, no auth). The `x naive` column divides by it.",
        f"- **{NAIVE_THREAD}**: the same server started with `--thread`: its route is a plain "
        "`def`, which FastAPI runs in its threadpool, so ONNX Runtime runs off the event loop.",
        f"- **{ASGI_FLOOR}** (bench/floor_asgi.py) and **{STARLETTE_FLOOR}** "
        "(bench/floor_starlette.py, `POST /v2/models/{model}/infer`): the floor of a Python "
        "server on uvicorn. Each reads the whole request body and sends a fixed one-row "
        "Open Inference Protocol answer: no parsing, no model. They get the same request as "
        "tensorgate (its JSON body and `Authorization` header, which they ignore); one "
        "uvicorn worker, uvicorn's defaults but log level `warning`. Measured with the "
        "`mlp` and `digits` bodies (`wide`'s is the same size as `mlp`'s).",
        "- **tensorgate**: `tensorgate serve` as users run it: default settings (log level "
        "`info`, the access log on, one JSON line per request into the server's log file), "
        "the shipped model configs, batching on, Prometheus metrics collected and `/metrics` "
        "served"
        + (", JWT auth on" if report.auth else ", auth not enabled (not merged at run time)")
        + f"; **{ON}** is one process; **{DEFAULT}** passes no `--workers`, so the default "
        f"is used ({report.default_workers} serving process"
        + ("es" if report.default_workers != 1 else "")
        + " on this machine); **batching off** (one process) sets `batching.enabled: false` "
        "(one ONNX Runtime call per request).",
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
        *targets_table(report),
        "## Throughput and latency",
        "",
        "`ok req/s` counts successful answers only; `errors` are non-2xx answers (503 when a "
        "bounded queue is full) and socket errors; latencies are wrk's, over all answers.",
        "",
    ]
    for model in ("mlp", "digits", "wide"):
        lines += _table(report, model)
    lines += [
        *binary_section(report),
        *grpc_section(report),
        *shm_section(report),
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
        *_large_json_section(report),
        *_two_subjects_section(report),
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
        *AB_AND_SOAK,
    ]
    (out / "benchmarks.md").write_text("\n".join(lines))


def _cores() -> int:
    return os.cpu_count() or 0
