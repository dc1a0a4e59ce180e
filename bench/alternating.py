"""Variants measured in turns: each round runs every variant once, and each variant's
figure is the median over the rounds, so that all meet the host's quick and slow
moments alike (the noise of a shared machine moves in waves of seconds)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from progress import Progress
from report import Measurement, median_of
from wrk import WrkResult


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
