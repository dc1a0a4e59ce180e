"""What the soak's requests got: answers by kind and status, the 5xx answers the docs do
not describe, and the requests that got no answer at all."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

KEPT_SAMPLES = 20
"""Undocumented answers kept in full (all are counted)."""


def documented(status: int, retry_after: bool, message: str, remote: bool) -> bool:
    """Whether a 5xx answer is one the docs describe: 503 with Retry-After (a full queue)
    or naming a model that is not ready, 504 (a deadline), and for a remote model 502 or
    503 (its upstream broke off or is out; docs/operations.md#remote-models)."""
    if status == 504:
        return True
    if status == 503:
        return retry_after or remote or "not ready" in message or "no ready version" in message
    return status == 502 and remote


@dataclass(frozen=True)
class Lost:
    """A request sent that got no answer: the connection broke, or nothing came in time."""

    kind: str
    port: int
    """The client's local port: which connection (matched against a killed worker's)."""
    sent: float
    failed: float
    reason: str


@dataclass(frozen=True)
class Odd:
    """An answer the docs do not describe (an undocumented 5xx)."""

    at: float
    kind: str
    status: int
    message: str


@dataclass
class Tally:
    """Counts and records of one soak run; times are seconds since its start."""

    sent: int = 0
    answered: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Answers by (kind, status)."""
    odd: int = 0
    odd_samples: list[Odd] = field(default_factory=list)
    lost: list[Lost] = field(default_factory=list)
    not_connected: int = 0
    """Requests never sent: the connection could not be opened."""
    remote_failures: list[float] = field(default_factory=list)
    """When a remote model's request was answered other than 200."""

    def answer(
        self, at: float, kind: str, remote: bool, status: int, retry_after: bool, body: bytes
    ) -> None:
        """Count one answer; keep it when it is an undocumented 5xx."""
        self.answered[(kind, status)] += 1
        if remote and status != 200:
            self.remote_failures.append(at)
        if status < 500:
            return
        message = body[:300].decode("utf-8", "replace")
        if not documented(status, retry_after, message, remote):
            self.odd += 1
            if len(self.odd_samples) < KEPT_SAMPLES:
                self.odd_samples.append(Odd(at, kind, status, message))

    def by_status(self) -> Counter[int]:
        """Answers by status, every kind together."""
        totals: Counter[int] = Counter()
        for (_, status), n in self.answered.items():
            totals[status] += n
        return totals
