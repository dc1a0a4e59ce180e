"""``make bench-ab BASE=<rev>``: this tree against another revision, and each fenced speed
trick switched off, in alternating rounds of one session; writes docs/benchmarks-ab.md.

The servers are those of ``make bench`` (auth, metrics and the access log on, defaults),
started side by side: the revision under test from this checkout, the base from a git
worktree of ``BASE``, and this tree again with ``--http httptools``, with
``disconnect_watch=task``, with ``metrics_tally=false``, with every batch on the
runtime's thread (``batching.inline_max_ms: 0``) and with fair share off
(``fair_share.enabled=false``: its cost with one caller, issue 20). In each round every
server takes its turn on each model and connection count, so slow and fast moments of a
noisy host fall on all of them; a figure is the median of its rounds, and the spread
(lowest to highest round) says how far apart two medians must be before they mean
anything.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from progress import Progress
from run import ROOT, enable_auth, ensure_wrk, load_average, make_bodies
from servers import Server, naive, running, tensorgate
from wrk import run_wrk

MODELS = ("mlp", "digits")
CONNECTIONS = (1, 64)
FAIR_SHARE_OFF = "this tree, fair_share.enabled=false"
FAIR_SHARE_MAX_COST = 0.03
"""Issue 20: fair share may cost at most 3% of req/s on ``mlp`` at 64 connections."""


@dataclass(frozen=True)
class Variant:
    """One server under comparison: where its code comes from and how it is started."""

    label: str
    source: Path
    extra_args: tuple[str, ...] = ()
    extra_env: tuple[tuple[str, str], ...] = ()
    models: Path = ROOT / "models"
    """The repository it serves (the demo models, or a copy with a config changed)."""


@dataclass(frozen=True)
class Figure:
    """Successful requests per second of one variant: median and spread of its rounds."""

    median: float
    low: float
    high: float
    p50_ms: float


@contextlib.contextmanager
def worktree(revision: str, into: Path) -> Iterator[Path]:
    """A detached checkout of ``revision``, removed afterwards."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield into
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(into)],
            check=False,
            capture_output=True,
        )


def without_inline(into: Path) -> Path:
    """A copy of the demo models whose batches all go to the runtime's thread."""
    shutil.copytree(ROOT / "models", into)
    for config in into.glob("*/config.yaml"):
        settings = yaml.safe_load(config.read_text()) or {}
        settings.setdefault("batching", {})["inline_max_ms"] = 0
        config.write_text(yaml.safe_dump(settings))
    return into


@contextlib.contextmanager
def started(
    variants: list[Variant], work: Path, env: dict[str, str]
) -> Iterator[dict[str, Server]]:
    """Every variant's server and one naive server per model, all up at once."""
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for n, variant in enumerate(variants):
            command = [*tensorgate(variant.models, 1), *variant.extra_args]
            variant_env = {
                **env,
                "PYTHONPATH": str(variant.source / "src"),
                **dict(variant.extra_env),
            }
            log = work / f"server-{n}.log"
            servers[variant.label] = stack.enter_context(
                running(command, "/v2/health/ready", log, variant_env)
            )
        for model in MODELS:
            servers[f"naive {model}"] = stack.enter_context(
                running(
                    naive(ROOT / "models" / model / "1" / "model.onnx"),
                    "/openapi.json",
                    work / f"naive-{model}.log",
                )
            )
        yield servers


def measure(
    servers: dict[str, Server],
    labels: list[str],
    bodies: dict[tuple[str, str], Path],
    work: Path,
    rounds: int,
    seconds: int,
) -> dict[tuple[str, str, int], Figure]:
    """wrk on every (variant, model, connections), the variants taking turns each round."""
    progress = Progress(rounds * len(MODELS) * len(CONNECTIONS) * (len(labels) + 1))
    rates: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for round_number in range(rounds):
        # Rotate who goes first, so no variant always runs right after the naive server.
        order = labels[round_number % len(labels) :] + labels[: round_number % len(labels)]
        for model in MODELS:
            for conns in CONNECTIONS:
                for label in [*order, "naive"]:
                    step = f"round {round_number + 1}: {label} {model} c={conns}"
                    progress.step(step)
                    if label == "naive":
                        url = servers[f"naive {model}"].base + "/predict"
                        body, token = bodies[(model, "naive")], False
                    else:
                        url = servers[label].base + f"/v2/models/{model}/infer"
                        body, token = bodies[(model, "tensorgate")], True
                    result = run_wrk(url, body, conns, seconds, work, send_token=token)
                    ok_rate = result.requests_per_s * (1 - result.errors / max(1, result.requests))
                    rates.setdefault((label, model, conns), []).append((ok_rate, result.p50_ms))
                    progress.finish(step)
    return {
        key: Figure(
            statistics.median(rate for rate, _ in runs),
            min(rate for rate, _ in runs),
            max(rate for rate, _ in runs),
            statistics.median(p50 for _, p50 in runs),
        )
        for key, runs in rates.items()
    }


def report(
    figures: dict[tuple[str, str, int], Figure],
    labels: list[str],
    header: list[str],
) -> str:
    """The Markdown page: one table per model and connection count."""
    lines = [*header, ""]
    for model in MODELS:
        for conns in CONNECTIONS:
            naive_rate = figures[("naive", model, conns)].median
            lines += [
                f"### {model}, {conns} connection{'s' if conns > 1 else ''}",
                "",
                "| server | req/s (median) | rounds' spread | p50 ms | vs naive |",
                "|---|---:|---:|---:|---:|",
            ]
            for label in [*labels, "naive"]:
                fig = figures[(label, model, conns)]
                lines.append(
                    f"| {label} | {fig.median:,.0f} | {fig.low:,.0f}-{fig.high:,.0f} "
                    f"| {fig.p50_ms:.2f} | {fig.median / naive_rate:.2f}x |"
                )
            lines.append("")
    return "\n".join(lines)


def fair_share_cost(figures: dict[tuple[str, str, int], Figure], this_tree: str) -> str:
    """The line on what fair share costs one caller: ``mlp`` at 64 connections, this tree
    against it with fair share off, against the target."""
    on, off = figures[(this_tree, "mlp", 64)], figures[(FAIR_SHARE_OFF, "mlp", 64)]
    cost = 1 - on.median / off.median if off.median else float("nan")
    met = "met" if round(cost, 9) <= FAIR_SHARE_MAX_COST else "**not met**"
    return (
        f"Fair share with one caller (`mlp`, 64 connections): {on.median:,.0f} req/s on "
        f"(rounds {on.low:,.0f}-{on.high:,.0f}), {off.median:,.0f} off "
        f"({off.low:,.0f}-{off.high:,.0f}): a cost of {cost:.1%} of req/s, 1 - on/off "
        f"(target: at most {FAIR_SHARE_MAX_COST:.0%}: {met})."
    )


def main() -> None:
    """Compare, then write the page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-ab.md")
    args = parser.parse_args()
    ensure_wrk()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    load_before = load_average()
    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tensorgate-ab-") as tmp:
        work = Path(tmp)
        with worktree(args.base, work / "base") as base:
            this_tree = f"this tree ({head}+)"
            variants = [
                Variant(f"base {args.base}", base),
                Variant(this_tree, ROOT),
                Variant("this tree, --http httptools", ROOT, ("--http", "httptools")),
                Variant(
                    "this tree, disconnect_watch=task",
                    ROOT,
                    extra_env=(("TENSORGATE_DISCONNECT_WATCH", "task"),),
                ),
                Variant(
                    "this tree, metrics_tally=false",
                    ROOT,
                    extra_env=(("TENSORGATE_METRICS_TALLY", "false"),),
                ),
                Variant(
                    "this tree, batching.inline_max_ms: 0",
                    ROOT,
                    models=without_inline(work / "models-no-inline"),
                ),
                Variant(
                    FAIR_SHARE_OFF,
                    ROOT,
                    extra_env=(("TENSORGATE_FAIR_SHARE__ENABLED", "false"),),
                ),
            ]
            labels = [variant.label for variant in variants]
            bodies = make_bodies(work)
            with started(variants, work, enable_auth()) as servers:
                figures = measure(servers, labels, bodies, work, args.rounds, args.seconds)
    header = [
        "# A/B benchmark",
        "",
        f"`make bench-ab BASE={args.base}` at {head}: {args.rounds} alternating rounds of "
        f"{args.seconds} s wrk runs per server, model and connection count, one process "
        "each, auth, metrics and the access log on (the servers of `make bench`). "
        "Successful requests per second; the spread is the lowest and highest round. "
        f"Load average {load_before:.2f} before, {load_average():.2f} after; "
        f"{time.monotonic() - begun:.0f} s in all.",
        "",
        fair_share_cost(figures, this_tree),
    ]
    args.out.write_text(report(figures, labels, header) + "\n")
    sys.stdout.write(f"wrote {args.out}\n")


if __name__ == "__main__":
    main()
