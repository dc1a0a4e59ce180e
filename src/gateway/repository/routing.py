"""Which version a request runs on when it names a label, or no version at all.

Labels name versions (``canary`` -> 2). A traffic split shares the unversioned routes
between targets by weight, decided per request: at random, or by a hash of a caller's key
(the token's subject, a header) when the split is sticky, so that one caller stays on one
version for as long as the weights do not change.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from gateway.repository.config import ModelConfig, StickyHeader
from gateway.repository.versions import parse_version

T = TypeVar("T")

STICKY_SUBJECT = "subject"
Sticky = Literal["subject"] | str
"""``subject`` (the token's subject) or the lower-case name of a request header."""


@dataclass(frozen=True, slots=True)
class Routing:
    """A model's labels and traffic split, from its ``config.yaml``."""

    labels: Mapping[str, int] = field(default_factory=dict)
    split: tuple[tuple[str, int], ...] = ()
    """(target, weight): a target is a label or a version number, as written."""
    sticky: Sticky | None = None

    @classmethod
    def of(cls, config: ModelConfig) -> Routing:
        """The routing ``config`` asks for."""
        traffic = config.traffic
        if traffic is None:
            return cls(dict(config.version_labels))
        sticky = traffic.sticky
        return cls(
            dict(config.version_labels),
            tuple(traffic.split.items()),
            sticky.header.lower() if isinstance(sticky, StickyHeader) else sticky,
        )

    def version_of(self, target: str) -> int | None:
        """The version a label or a version number names, else None."""
        labelled = self.labels.get(target)
        return labelled if labelled is not None else parse_version(target)

    def labels_of(self, version: int) -> list[str]:
        """The labels naming ``version``, sorted."""
        return sorted(label for label, number in self.labels.items() if number == version)

    def choose(self, ready: Callable[[int], T | None], key: str | None) -> T | None:
        """The split's pick among its targets that ``ready`` returns a version for (None
        when none is); None when there is no split. ``key`` makes the pick sticky."""
        if not self.split:
            return None
        candidates: list[tuple[T, int]] = []
        for target, weight in self.split:
            number = self.version_of(target)
            found = ready(number) if number is not None and weight > 0 else None
            if found is not None:
                candidates.append((found, weight))
        return pick_weighted(candidates, draw(key))


def draw(key: str | None) -> float:
    """A point in [0, 1): a hash of ``key`` (the same for every process and replica), or
    random when there is no key."""
    if key is None:
        return random.random()
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick_weighted(candidates: Sequence[tuple[T, int]], point: float) -> T | None:
    """The candidate whose share of the total weight contains ``point`` (in [0, 1))."""
    total = sum(weight for _, weight in candidates)
    if total <= 0:
        return None
    mark = point * total
    for candidate, weight in candidates:
        if mark < weight:
            return candidate
        mark -= weight
    return candidates[-1][0]  # rounding at the very top of the range
