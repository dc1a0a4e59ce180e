"""The upstream replicas of a remote model: which one takes the next batch, and which are
kept out for now.

A batch goes to the available replica with the fewest batches outstanding (ties taken in
turn). A replica is
kept out while its last health check failed, and while its circuit is open: after
``failure_threshold`` failures in a row it takes nothing for ``open_s``, then one batch
(half-open); a success closes the circuit, a failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

C = TypeVar("C")

Clock = Callable[[], float]


@dataclass(slots=True, eq=False)
class Replica(Generic[C]):
    """One upstream address, its HTTP client and what is known of its health."""

    url: str
    client: C
    outstanding: int = 0
    failures: int = 0
    """Failures in a row; reset by a success."""
    open_until: float = 0.0
    ready: bool = True
    """The last health check's verdict (true until one says otherwise)."""
    probing: bool = False
    """A half-open circuit's one trial batch is on its way."""
    last_error: str = field(default="")

    def state(self, now: float, threshold: int) -> str:
        """``closed``, ``open``, ``half-open`` or ``not ready``, for messages."""
        if not self.ready:
            return "not ready"
        if self.failures >= threshold:
            return "open" if now < self.open_until else "half-open"
        return "closed"


class ReplicaSet(Generic[C]):
    """Least-outstanding choice among replicas, with a circuit breaker per replica."""

    def __init__(
        self,
        replicas: Sequence[Replica[C]],
        *,
        failure_threshold: int,
        open_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.replicas = list(replicas)
        self._threshold = failure_threshold
        self._open_s = open_s
        self._clock = clock
        self._turn = 0

    def choose(self, tried: set[str]) -> Replica[C] | None:
        """The replica for the next batch (one not in ``tried``), or None; among those
        with as few outstanding, the next in turn, so that idle replicas share the work."""
        now = self._clock()
        best: Replica[C] | None = None
        count = len(self.replicas)
        for step in range(count):
            replica = self.replicas[(self._turn + step) % count]
            if replica.url in tried or not self._takes_work(replica, now):
                continue
            if best is None or replica.outstanding < best.outstanding:
                best = replica
        self._turn = (self._turn + 1) % max(1, count)
        if best is not None and best.failures >= self._threshold:
            best.probing = True  # half-open: this batch is the trial
        return best

    def _takes_work(self, replica: Replica[C], now: float) -> bool:
        if not replica.ready:
            return False
        if replica.failures < self._threshold:
            return True
        return now >= replica.open_until and not replica.probing

    def succeeded(self, replica: Replica[C]) -> None:
        """A batch came back: the circuit closes."""
        replica.failures = 0
        replica.probing = False
        replica.last_error = ""

    def failed(self, replica: Replica[C], reason: str) -> None:
        """A batch failed on ``replica``; enough in a row open its circuit."""
        replica.failures += 1
        replica.probing = False
        replica.last_error = reason
        if replica.failures >= self._threshold:
            replica.open_until = self._clock() + self._open_s

    def released(self, replica: Replica[C]) -> None:
        """A batch ended neither way (the caller's deadline, the caller's own error): a
        half-open circuit may try again."""
        replica.probing = False

    def health(self, replica: Replica[C], *, ready: bool, reason: str = "") -> None:
        """Record a health check's verdict."""
        replica.ready = ready
        if not ready:
            replica.last_error = reason

    def describe(self) -> str:
        """Each replica's state and last error, for error messages."""
        now = self._clock()
        parts = []
        for replica in self.replicas:
            state = replica.state(now, self._threshold)
            detail = f" ({replica.last_error})" if replica.last_error else ""
            parts.append(f"{replica.url}: {state}{detail}")
        return "; ".join(parts)
