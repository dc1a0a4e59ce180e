"""The soak's verdict: which lost requests a killed worker explains, whether memory and
file descriptors stayed flat, and the targets of issue 20 (item 5), met or not."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from soak.faults import Kill
from soak.outcomes import Lost, Tally

FLAT = 0.05
"""RSS and open files may move this much between the baseline and the end."""
KILL_WINDOW_S = 5.0
"""A request lost on a killed worker's connection fails within this long of the kill."""


@dataclass(frozen=True)
class Sample:
    """The gateway's processes (supervisor and workers) at one moment of the run."""

    at: float
    rss_bytes: int
    open_files: int


@dataclass(frozen=True)
class Change:
    """A repository change: when, what, and the repository API's answer."""

    at: float
    what: str
    status: int
    message: str = ""


@dataclass
class SoakResult:
    """Everything one soak run recorded; times in seconds from its start."""

    seconds: float
    connections: int
    callers: int
    tally: Tally
    kills: list[Kill] = field(default_factory=list)
    replaced_after_s: list[float] = field(default_factory=list)
    """How long after each kill the supervisor had its workers back."""
    changes: list[Change] = field(default_factory=list)
    upstream_down: float | None = None
    upstream_back: float | None = None
    samples: list[Sample] = field(default_factory=list)
    idle_before: Sample | None = None
    idle_after: Sample | None = None
    exit_status: int | None = None


@dataclass(frozen=True)
class Losses:
    """Lost requests, each either explained by a kill or not."""

    by_kill: dict[int, list[Lost]]
    """By the killed worker's pid: lost on a connection it held, as it died."""
    elsewhere: list[Lost]

    def bounded(self, kills: Sequence[Kill]) -> bool:
        """At most one lost request per connection a killed worker held (one request
        in flight per connection: the clients never pipeline)."""
        return all(len(self.by_kill.get(k.pid, [])) <= len(k.ports) for k in kills)


def attribute(lost: Sequence[Lost], kills: Sequence[Kill]) -> Losses:
    """A lost request is a kill's when its connection was one the worker held and it
    failed between the worker's stop and ``KILL_WINDOW_S`` after its death."""
    by_kill: dict[int, list[Lost]] = {k.pid: [] for k in kills}
    elsewhere: list[Lost] = []
    for request in lost:
        kill = next(
            (
                k
                for k in kills
                if request.port in k.ports
                and k.stopped <= request.failed <= k.killed + KILL_WINDOW_S
            ),
            None,
        )
        if kill is None:
            elsewhere.append(request)
        else:
            by_kill[kill.pid].append(request)
    return Losses(by_kill, elsewhere)


@dataclass(frozen=True)
class Flatness:
    """A resource after warm-up and at the end: medians of the samples 10-20% into the
    run and of its last 10%."""

    start: float
    end: float

    @property
    def change(self) -> float:
        """Relative change from the start to the end."""
        return self.end / self.start - 1 if self.start else float("nan")

    @property
    def flat(self) -> bool:
        """Within ``FLAT`` either way."""
        return abs(self.change) <= FLAT


def flatness(samples: Sequence[Sample], seconds: float, read: Callable[[Sample], int]) -> Flatness:
    """``read`` of ``samples``, after warm-up against the end (see ``Flatness``)."""
    early = [read(s) for s in samples if 0.1 * seconds <= s.at < 0.2 * seconds]
    late = [read(s) for s in samples if s.at >= 0.9 * seconds]
    if not early or not late:
        return Flatness(float("nan"), float("nan"))
    return Flatness(statistics.median(early), statistics.median(late))


Target = tuple[str, str, bool]


def targets(result: SoakResult) -> list[Target]:
    """Issue 20's targets for the soak, with the figures behind each."""
    tally = result.tally
    losses = attribute(tally.lost, result.kills)
    on_kills = sum(len(v) for v in losses.by_kill.values())
    held = sum(len(k.ports) for k in result.kills)
    statuses = tally.by_status()
    change_500 = sum(c.status == 500 for c in result.changes)
    rss = flatness(result.samples, result.seconds, lambda s: s.rss_bytes)
    fds = flatness(result.samples, result.seconds, lambda s: s.open_files)
    return [
        (
            "no request lost but those on a killed worker's connections (at most one each)",
            f"{len(losses.elsewhere)} lost elsewhere; {on_kills} on {len(result.kills)} "
            f"killed workers' {held} connections",
            not losses.elsewhere and losses.bounded(result.kills),
        ),
        (
            "no 500 (inference and repository calls)",
            f"{statuses[500]} inference, {change_500} repository",
            statuses[500] == 0 and change_500 == 0,
        ),
        ("no undocumented 5xx", f"{tally.odd}", tally.odd == 0),
        (
            "RSS flat within 5% (after warm-up vs end)",
            f"{rss.start / 2**20:.1f} -> {rss.end / 2**20:.1f} MiB ({rss.change:+.1%})",
            rss.flat,
        ),
        (
            "open files flat within 5% (after warm-up vs end)",
            f"{_count(fds.start)} -> {_count(fds.end)} ({fds.change:+.1%})",
            fds.flat,
        ),
    ]


def _count(value: float) -> str:
    """A median count: whole unless it is the middle of two."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
