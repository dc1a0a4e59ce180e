"""Fair order in a batcher's queue: start-time fair queueing between callers' flows.

Each request belongs to a flow (its caller's share key: the token subject, or a group) with
a weight. It is tagged on arrival with the virtual time at which its flow may start it,
``max(now_virtual, flow's last finish)``, and its flow's finish moves on by ``rows /
weight``. The queue is kept in tag order, so a batch takes the requests of every flow in
proportion to the flows' weights, whatever order they arrived in: a caller that sends
more than its share waits behind the others' requests, not they behind its. Virtual time
is the start tag of the last request taken into a batch.

With one flow the tags only grow: the order is arrival order, as before, and an arrival
is appended like any other.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

_PRUNE_AT = 4096
"""Flows remembered before those that fell behind virtual time are forgotten (they would
start at virtual time anyway)."""


class Tagged(Protocol):
    """A queued request as fair queueing sees it."""

    flow: str
    weight: float
    tag: float


T = TypeVar("T", bound=Tagged)


class FairTags:
    """The virtual clock and each flow's last finish tag."""

    __slots__ = ("_finish", "virtual")

    def __init__(self) -> None:
        self.virtual = 0.0
        self._finish: dict[str, float] = {}

    def tag(self, flow: str, rows: int, weight: float) -> float:
        """The start tag of a request of ``rows`` rows arriving on ``flow``."""
        finish = self._finish
        start = finish.get(flow, 0.0)
        if start < self.virtual:
            start = self.virtual
        if len(finish) >= _PRUNE_AT and flow not in finish:
            self._prune()
        finish[flow] = start + rows / weight
        return start

    def taken(self, tag: float) -> None:
        """A request with start tag ``tag`` went into a batch."""
        if tag > self.virtual:
            self.virtual = tag

    def _prune(self) -> None:
        virtual = self.virtual
        self._finish = {flow: end for flow, end in self._finish.items() if end > virtual}


def insert_in_tag_order(queue: deque[T], item: T) -> None:
    """Queue ``item`` after every request whose tag is not greater than its own."""
    if not queue or queue[-1].tag <= item.tag:
        queue.append(item)
    else:
        queue.insert(bisect.bisect_right(queue, item.tag, key=_tag_of), item)


def _tag_of(item: Tagged) -> float:
    return item.tag


class Queued(Protocol):
    """A queued request that may be refused to make room for another flow."""

    @property
    def flow(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def parts(self) -> object | None: ...
    @property
    def future(self) -> asyncio.Future[Any]: ...


Q = TypeVar("Q", bound=Queued)


def victim_flow(queue: Iterable[Queued], flow: str) -> str | None:
    """The flow whose newest request a full queue refuses to let a request of ``flow``
    in: the one holding the most live requests per unit of weight, when ``flow`` holds
    fewer (per unit of its weight, one request of slack) than it. None: refuse ``flow``."""
    counts: dict[str, int] = {}
    weights: dict[str, float] = {}
    for item in queue:
        if not item.future.done():
            counts[item.flow] = counts.get(item.flow, 0) + 1
            weights[item.flow] = item.weight
    if not counts:
        return None
    worst = max(counts, key=lambda name: counts[name] / weights[name])
    if worst == flow:
        return None
    if flow in counts and counts[flow] / weights[flow] >= counts[worst] / weights[worst] - 1:
        return None
    return worst


def evict_over_share(queue: deque[Q], flow: str) -> Q | None:
    """Take the newest live, unsplit request of the flow ``victim_flow`` names for
    ``flow`` out of ``queue`` (None: there is none)."""
    worst = victim_flow(queue, flow)
    return None if worst is None else evict_newest(queue, worst)


def evict_newest(queue: deque[Q], flow: str) -> Q | None:
    """Take ``flow``'s newest live, unsplit request out of ``queue`` (None: there is none)."""
    for index in range(len(queue) - 1, -1, -1):
        item = queue[index]
        if item.flow == flow and item.parts is None and not item.future.done():
            del queue[index]
            return item
    return None
