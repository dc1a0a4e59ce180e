"""Cutting the next batch off a queue: invariants over any queue (hypothesis)."""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.batching.policy import BatchPolicy
from gateway.batching.queue import Pending, take_batch

Entry = tuple[int, int, bool, bool]  # rows, shape key, cancelled, expired


def queue_of(entries: list[Entry], loop: asyncio.AbstractEventLoop) -> deque[Pending]:
    queue: deque[Pending] = deque()
    for rows, key, cancelled, expired in entries:
        future: asyncio.Future[dict[str, np.ndarray]] = loop.create_future()
        if cancelled:
            future.cancel()
        queue.append(Pending({}, (), rows, ((key,),), 0.0 if expired else 10.0, 0.0, future))
    return queue


@given(
    entries=st.lists(
        st.tuples(st.integers(1, 8), st.integers(0, 2), st.booleans(), st.booleans()),
        max_size=20,
    ),
    max_rows=st.integers(1, 16),
    batching=st.booleans(),
    preferred=st.lists(st.integers(1, 16), max_size=3),
)
# A request passed over (another shape) between two that joined the batch, and the batch
# cut to a preferred size: the one cut off goes back after it, not before.
@example(
    entries=[(1, 0, False, False), (1, 1, False, False), (1, 0, False, False)],
    max_rows=2,
    batching=True,
    preferred=[1],
)
def test_a_batch_is_live_alike_bounded_and_nothing_is_lost(
    entries: list[Entry], max_rows: int, batching: bool, preferred: list[int]
) -> None:
    loop = asyncio.new_event_loop()
    try:
        queue = queue_of(entries, loop)
        before = list(queue)
        policy = BatchPolicy(
            max_batch_size=max_rows,
            max_queue_delay_s=0.0,
            max_queue_size=100,
            preferred_batch_sizes=tuple(sorted(set(preferred))),
            instances=1,
            batching=batching,
        )
        expired: list[Pending] = []
        batch = take_batch(queue, policy, 5.0, expired.append)
    finally:
        loop.close()
    live = [p for p in before if not p.future.done() and p.deadline > 5.0]
    if live:
        assert batch
        assert batch[0] is live[0]  # the oldest live request always goes first
    assert all(not p.future.done() and p.deadline > 5.0 for p in batch)
    assert len({p.key for p in batch}) <= 1
    if len(batch) > 1:
        assert batching
        assert sum(p.rows for p in batch) <= max_rows
    # Every request is in the batch, still queued (in its order), expired (its deadline
    # passed) or dropped (its caller cancelled it): none is lost.
    kept = {id(p) for p in [*batch, *queue, *expired]}
    assert all(p.future.cancelled() for p in before if id(p) not in kept)
    assert all(p.deadline <= 5.0 and not p.future.done() for p in expired)
    assert len(kept) == len(batch) + len(queue) + len(expired)
    assert [p for p in before if p in queue] == list(queue)
