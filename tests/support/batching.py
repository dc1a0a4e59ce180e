"""What the batcher's tests share: a manual clock, tagged rows, a guarded run, a batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from backends.base import Array
from gateway.batching.batcher import Batcher
from gateway.batching.policy import BatchPolicy
from support.fake_backend import FakeBackend

GUARD_S = 10  # hang guard only; nothing here waits on time


class ManualClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rows(tag: int, count: int, width: int = 4) -> dict[str, Array]:
    """``count`` rows whose values identify the request (``tag``) and the row."""
    values = tag * 1000 + np.arange(count * width, dtype=np.float32).reshape(count, width) / 8
    return {"x": values.astype(np.float32)}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh event loop, guarded against a hang."""
    asyncio.run(asyncio.wait_for(scenario(), GUARD_S))


def make(backend: FakeBackend, clock: ManualClock | None = None, **policy: Any) -> Batcher:
    """A started batcher over ``backend`` with ``policy``'s fields."""
    batcher = Batcher(
        "model 'fake' version 1", backend.infer, BatchPolicy(**policy), None, clock or ManualClock()
    )
    batcher.start()
    return batcher
