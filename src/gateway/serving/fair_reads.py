"""Fair reads: when the event loop is the bottleneck, a caller over its share of the
requests in progress has its connections' next requests left unread until it is back
under its share (issue 20; docs/operations.md#fair-share).

On a busy 2-core server the loop saturates long before a model's queue fills, and then
requests are served in the order connections are read: a caller with 256 connections
owns almost every turn, and one with 4 waits behind all of them. The model queue's fair
order (``batching.fair_queue``) cannot help a request that has not been read yet. So the
serving process counts each caller's requests in progress; with two callers or more and
at least ``capacity`` requests in progress, a connection whose caller holds its share
(``capacity`` times its weight over the active callers' total) is paused after an answer
(its next request stays in the socket) and resumed, oldest first, as its caller's
requests finish. A caller under its share is never paused, so its requests are read at
once and wait behind at most ``capacity`` others.

A connection's caller is known once its first request was authenticated (the pipeline
sets ``ConnectionShare.share``); its first request is never held back. One caller alone
is never paused, whatever the load: there is nobody to be fair to.

With ``--workers N`` the shares are the server's, not the process's: ``see`` hands in the
other workers' views (``gateway.cluster.shares``, every few milliseconds), and every
decision counts them too: the server is contended at ``capacity`` requests in progress
in all its workers together, a caller's share is that times its weight over the weights
of the callers active in any worker, and a caller at its share is held back in every
worker, including one that serves nobody else (it then leaves its CPU to the others).
``capacity`` is the server's, not each worker's: at ``capacity`` times the workers, a
flood fills what a polite caller's few connections leave, and the polite caller's
requests wait behind three times as many (measured: it kept 26-33% of its goodput
alone, against 44-68%). Each decision costs one dict lookup more than with one process.

A caller's share is split between the workers holding its connections back, in
proportion to what each has of it (requests in progress and connections held): a worker
reads no more of the caller than its part while another worker has connections of it
waiting, and every worker with some gets at least one request at a time. Without the
split, the worker whose request ends takes the freed place at once, and a worker whose
connections of that caller are all held waits for a place that is never free when its
view comes (measured with ``--workers 2``: 142 requests of a flood held unread for more
than 30 s).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from weakref import WeakKeyDictionary

from gateway.cluster.group import WORKERS_DIR_ENV
from gateway.cluster.shares import ShareExchange, View
from gateway.dataplane.fairness import Share


class ConnectionShare:
    """One connection's caller, as far as fair reads are concerned."""

    __slots__ = ("counted", "share")

    def __init__(self) -> None:
        self.share: Share | None = None
        """Set by the pipeline once the connection's caller is known."""
        self.counted: str | None = None
        """The flow a request (or a slot kept for the next one) of this connection is
        counted against, until it ends."""


Resume = Callable[[], None]


class FairReads:
    """One serving process's count of requests in progress per caller, and the
    connections left unread, per caller, oldest first.

    A caller stays among those sharing (``active``) while it has a request in progress or
    a connection held, and for ``4 * capacity`` answers of the process after its last
    one: a closed-loop client is between two requests now and then, and forgetting it
    then would hand its share straight back to the flood."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._in_progress: dict[str, int] = {}
        self._total = 0
        self._weights: dict[str, float] = {}  # the active callers
        self._weight_total = 0.0
        # The other workers, as their last views say (all empty with one process).
        self._others: dict[str, int] = {}
        self._others_total = 0
        self._others_weights: dict[str, float] = {}
        self._others_waiting: dict[str, int] = {}
        self._elsewhere_weight = 0.0  # callers active in other workers only
        self._elsewhere_count = 0
        self._answers = 0
        self._last_answer: dict[str, int] = {}
        self._waiting: dict[str, dict[ConnectionShare, Resume]] = {}

    @property
    def in_progress(self) -> int:
        """Requests counted in progress (and slots kept for resumed connections)."""
        return self._total

    @property
    def waiting(self) -> int:
        """Connections left unread."""
        return sum(len(queue) for queue in self._waiting.values())

    @property
    def active(self) -> int:
        """Callers sharing the server now (in this process or, as far as it knows, another)."""
        return len(self._weights) + self._elsewhere_count

    def view(self) -> View:
        """This process's load, for the other workers."""
        waiting = {flow: len(queue) for flow, queue in self._waiting.items()}
        return View(dict(self._in_progress), dict(self._weights), waiting)

    def see(self, views: list[View]) -> None:
        """The other workers' latest views (all of those alive): decide by the server's
        load from now on, and read again what that lets in."""
        others: dict[str, int] = {}
        weights: dict[str, float] = {}
        waiting: dict[str, int] = {}
        for view in views:
            for flow, count in view.in_progress.items():
                others[flow] = others.get(flow, 0) + count
            for flow, count in view.waiting.items():
                waiting[flow] = waiting.get(flow, 0) + count
            weights.update(view.weights)
        self._others, self._others_weights, self._others_waiting = others, weights, waiting
        self._others_total = sum(others.values())
        self._count_elsewhere()
        if self._waiting:
            self._resume_what_fits()

    def begin(self, connection: ConnectionShare) -> None:
        """A request of ``connection`` started (its head is in)."""
        if connection.counted is not None:  # a slot was kept for it when it was resumed
            return
        share = connection.share
        if share is None or not share.flow:
            return
        flow = share.flow
        connection.counted = flow
        self._in_progress[flow] = self._in_progress.get(flow, 0) + 1
        self._total += 1
        if flow not in self._weights:
            self._activate(flow, share.weight)

    def end(self, connection: ConnectionShare) -> None:
        """``connection``'s request ended (answered, or the connection was lost)."""
        flow = connection.counted
        if flow is None:
            return
        connection.counted = None
        self._total -= 1
        left = self._in_progress[flow] - 1
        if left:
            self._in_progress[flow] = left
        else:
            del self._in_progress[flow]
        self._answers += 1
        self._last_answer[flow] = self._answers
        if self._answers % (4 * self.capacity) == 0:
            self._forget_idle()
        if self._waiting:
            self._resume_what_fits()

    def holds_back(self, connection: ConnectionShare) -> bool:
        """Whether ``connection``'s next request should stay unread for now: its caller
        holds its share of a contended process shared with others."""
        share = connection.share
        if share is None or not share.flow:
            return False
        if len(self._weights) + self._elsewhere_count < 2:
            return False  # one caller alone: nobody to be fair to
        # Its weight from the share: a connection's first request was never counted (its
        # caller was not known yet), so the caller need not be active here.
        flow, weight = share.flow, share.weight
        if self._others_waiting and self._over_part(flow, weight):
            return True
        if self._total + self._others_total < self.capacity:
            return False
        in_progress = self._in_progress.get(flow, 0) + self._others.get(flow, 0)
        return in_progress >= self._share_of(flow, weight)

    def hold(self, connection: ConnectionShare, resume: Resume) -> None:
        """Keep ``connection`` unread until ``resume`` is called (by ``end``, or by
        ``release`` when it closes or the server shuts down)."""
        share = connection.share
        assert share is not None
        if share.flow not in self._weights:
            self._activate(share.flow, share.weight)
        self._waiting.setdefault(share.flow, {})[connection] = resume

    def release(self, connection: ConnectionShare) -> Resume | None:
        """Forget ``connection`` if it is held: returns its resume callback, not called."""
        share = connection.share
        if share is None:
            return None
        queue = self._waiting.get(share.flow)
        if queue is None or connection not in queue:
            return None
        resume = queue.pop(connection)
        if not queue:
            del self._waiting[share.flow]
        return resume

    def release_all(self) -> list[Resume]:
        """Forget every held connection (shutting down): their resume callbacks."""
        resumes = [resume for queue in self._waiting.values() for resume in queue.values()]
        self._waiting.clear()
        return resumes

    def _activate(self, flow: str, weight: float) -> None:
        self._weights[flow] = weight
        self._weight_total += weight
        self._last_answer[flow] = self._answers
        if flow in self._others_weights:
            self._count_elsewhere()

    def _count_elsewhere(self) -> None:
        """The callers active in other workers and not in this one, and their weights."""
        elsewhere = [w for flow, w in self._others_weights.items() if flow not in self._weights]
        self._elsewhere_count = len(elsewhere)
        self._elsewhere_weight = sum(elsewhere)

    def _forget_idle(self) -> None:
        """Callers with nothing in progress or held, and no answer for a while, stop
        sharing."""
        horizon = self._answers - 4 * self.capacity
        for flow in list(self._weights):
            idle = flow not in self._in_progress and flow not in self._waiting
            if idle and self._last_answer.get(flow, 0) <= horizon:
                self._weight_total -= self._weights.pop(flow)
                self._last_answer.pop(flow, None)
        if not self._weights:
            self._weight_total = 0.0  # no drift from float sums
        self._count_elsewhere()

    def _share_of(self, flow: str, weight: float) -> float:
        """``flow``'s share of ``capacity``; a caller active nowhere yet (its first
        request was never counted) is counted in with ``weight``."""
        weight_total = self._weight_total + self._elsewhere_weight
        if flow not in self._weights and flow not in self._others_weights:
            weight_total += weight
        return max(1.0, self.capacity * weight / weight_total)

    def _resume_what_fits(self) -> None:
        """Resume held connections, oldest first and taking turns between callers, while
        their caller is under its share or the process is no longer contended; each keeps
        a slot for its request."""
        resumed = True
        while resumed and self._waiting:
            resumed = False
            for flow in list(self._waiting):
                if not self._fits(flow):
                    continue
                queue = self._waiting[flow]
                connection, resume = next(iter(queue.items()))
                del queue[connection]
                if not queue:
                    del self._waiting[flow]
                connection.counted = flow
                self._in_progress[flow] = self._in_progress.get(flow, 0) + 1
                self._total += 1
                resume()
                resumed = True

    def _fits(self, flow: str) -> bool:
        if len(self._weights) + self._elsewhere_count < 2:
            return True
        weight = self._weights[flow]
        if self._others_waiting and self._over_part(flow, weight):
            return False
        if self._total + self._others_total < self.capacity:
            return True
        in_progress = self._in_progress.get(flow, 0) + self._others.get(flow, 0)
        return in_progress < self._share_of(flow, weight)

    def _over_part(self, flow: str, weight: float) -> bool:
        """Whether, while another worker holds connections of ``flow`` back, this worker
        has its part of the caller's share in progress: the share split in proportion to
        what each worker has of the caller, at least one request each."""
        held_elsewhere = self._others_waiting.get(flow, 0)
        if not held_elsewhere:
            return False
        here = self._in_progress.get(flow, 0)
        queue = self._waiting.get(flow)
        demand_here = here + (len(queue) if queue else 0)
        demand = demand_here + self._others.get(flow, 0) + held_elsewhere
        return here >= max(1.0, self._share_of(flow, weight) * demand_here / demand)


_PER_SERVER: WeakKeyDictionary[object, FairReads] = WeakKeyDictionary()


def fair_reads_of(
    server_state: object,
    capacity: int,
    loop: asyncio.AbstractEventLoop,
    view_interval_s: float = 0.0,
) -> FairReads:
    """The one ``FairReads`` of a uvicorn server (its ``server_state``): every connection
    of a serving process shares it. In a worker of ``--workers N`` (with a
    ``view_interval_s``), it exchanges views with the other workers from then on."""
    reads = _PER_SERVER.get(server_state)
    if reads is None:
        reads = _PER_SERVER[server_state] = FairReads(capacity)
        directory = os.environ.get(WORKERS_DIR_ENV)
        if directory and view_interval_s > 0:
            exchange = ShareExchange(
                Path(directory),
                reads.view,
                reads.see,
                tick_s=view_interval_s,
                max_age_s=view_max_age_s(view_interval_s),
            )
            exchange.start(loop)
            weakref.finalize(server_state, exchange.close)
    return reads


def view_max_age_s(view_interval_s: float) -> float:
    """How old another worker's view may be before it no longer counts: 200 intervals,
    at least 1 s (a saturated worker's loop may take over 100 ms between two ticks)."""
    return max(1.0, 200 * view_interval_s)
