"""Variants measured in turns: each round runs every variant once, and each variant's
figure is the median over the rounds, so that all meet the host's quick and slow
moments alike (the noise of a shared machine moves in waves of seconds)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from progress import Progress
from results import Measurement, median_of
from servers import Server
from wrk import WrkResult, run_wrk


def alternating(
    variants: Mapping[str, Callable[[], WrkResult]],
    model: str,
    conns: int,
    rounds: int,
    progress: Progress,
) -> list[Measurement]:
    """Run every variant once per round, ``rounds`` times; one median row per variant."""
    runs: dict[str, list[WrkResult]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            label = f"{name} {model} c={conns}"
            progress.step(label)
            runs[name].append(run())
            progress.finish(label)
    return [median_of(name, model, conns, results) for name, results in runs.items()]


def servers_in_turns(
    servers: Mapping[str, Server],
    kinds: Sequence[str],
    body: Path,
    model: str,
    connections: Sequence[int],
    work: Path,
    seconds: int,
    rounds: int,
    progress: Progress,
) -> list[Measurement]:
    """The same protocol ``body`` for ``model`` sent to each of the ``kinds`` servers at
    each connection count, the servers taking turns in every round."""

    def run(kind: str, conns: int) -> Callable[[], WrkResult]:
        url = f"{servers[kind].base}/v2/models/{model}/infer"
        return lambda: run_wrk(url, body, conns, seconds, work, send_token=True)

    results: list[Measurement] = []
    for conns in connections:
        variants = {kind: run(kind, conns) for kind in kinds}
        results += alternating(variants, model, conns, rounds, progress)
    return results
