"""Fair order between callers in a batcher's queue (start-time fair queueing), driven by
events and an injected clock (no sleeps)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.batching.fair_queue import FairTags, insert_in_tag_order, victim_flow
from gateway.errors import Overloaded
from support.batching import make, rows, run
from support.fake_backend import FakeBackend


@dataclass
class Item:
    flow: str
    weight: float
    tag: float
    parts: object | None = None
    future: Any = None
    number: int = 0


@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=50))
def test_one_caller_is_served_in_arrival_order(sizes: list[int]) -> None:
    tags = FairTags()
    queue: deque[Item] = deque()
    for index, size in enumerate(sizes):
        item = Item("alice", 1.0, tags.tag("alice", size, 1.0))
        item.number = index
        insert_in_tag_order(queue, item)
        if index % 3 == 2:  # batches are taken now and then
            tags.taken(queue.popleft().tag)
    remaining = [item.number for item in queue]
    assert remaining == sorted(remaining)


@given(
    flood=st.integers(min_value=4, max_value=60),
    polite=st.integers(min_value=1, max_value=4),
    weight=st.sampled_from([1.0, 2.0, 3.0]),
)
def test_a_late_caller_goes_ahead_of_a_flood_in_proportion_to_its_weight(
    flood: int, polite: int, weight: float
) -> None:
    tags = FairTags()
    queue: deque[Item] = deque()
    for _ in range(flood):
        insert_in_tag_order(queue, Item("flood", 1.0, tags.tag("flood", 1, 1.0)))
    for _ in range(polite):
        insert_in_tag_order(queue, Item("polite", weight, tags.tag("polite", 1, weight)))
    order = [item.flow for item in queue]
    # By the time the polite caller's last request is served, the flood has had about
    # polite / weight turns: its share, not everything it queued first.
    last_polite = max(index for index, flow in enumerate(order) if flow == "polite")
    served_flood = order[:last_polite].count("flood")
    assert served_flood <= polite / weight + 1


async def test_the_flow_most_over_its_share_gives_way_and_the_caller_under_it_gets_in() -> None:
    loop = asyncio.get_running_loop()
    queue = [Item("flood", 1.0, 0.0, future=loop.create_future()) for _ in range(6)]
    queue.append(Item("polite", 1.0, 0.0, future=loop.create_future()))
    assert victim_flow(queue, "polite") == "flood"
    assert victim_flow(queue, "flood") is None  # the flood itself is refused
    assert victim_flow(queue, "newcomer") == "flood"
    heavy = [Item("heavy", 6.0, 0.0, future=loop.create_future()) for _ in range(6)]
    # Six requests at weight 6 are one per unit of weight: not over a share of one.
    assert victim_flow([*heavy, queue[-1]], "polite") is None


def test_batches_take_turns_between_callers_when_the_queue_is_backed_up() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, max_batch_size=2, max_queue_size=64, max_queue_delay_s=0)
        backend.hold = True
        first = batcher.submit(rows(0, 1), ["y"], flow="flood")  # runs; the rest queue
        await backend.started.wait()
        flood = [batcher.submit(rows(1, 1), ["y"], flow="flood") for _ in range(8)]
        polite = [batcher.submit(rows(2, 1), ["y"], flow="polite") for _ in range(2)]
        backend.hold = False
        backend.release.set()
        await asyncio.gather(first, *flood, *polite)
        await batcher.close()
        # The polite caller's two requests were in the first two batches after the
        # running one, not behind the flood's eight.
        tags_of_batches = [
            set((batch[:, 0] // 1000).astype(int).tolist()) for batch in backend.batches
        ]
        assert 2 in tags_of_batches[1]
        assert 2 in tags_of_batches[2]

    run(scenario)


def test_a_full_queue_refuses_the_floods_newest_request_to_let_a_polite_one_in() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, max_batch_size=1, max_queue_size=4, max_queue_delay_s=0)
        backend.hold = True
        running = batcher.submit(rows(0, 1), ["y"], flow="flood")
        await backend.started.wait()
        queued = [batcher.submit(rows(1, 1), ["y"], flow="flood") for _ in range(4)]
        with pytest.raises(Overloaded):
            batcher.submit(rows(1, 1), ["y"], flow="flood")  # the flood itself: refused
        assert batcher.check_admission(1, "polite") is True  # let in before its body
        polite = batcher.submit(rows(2, 1), ["y"], flow="polite")
        assert queued[-1].done()
        with pytest.raises(Overloaded, match="more than its share"):
            queued[-1].result()
        backend.hold = False
        backend.release.set()
        outputs = await asyncio.gather(running, *queued[:-1], polite)
        np.testing.assert_array_equal(outputs[-1]["y"], rows(2, 1)["x"])
        await batcher.close()

    run(scenario)
