"""A batcher's queue: what each queued request holds, and how the next batch is cut.

The queue is in fair order (``batching.fair_queue``; arrival order for one caller). The
first live request starts the batch; requests of the same shape key join it (all of
them, while batching) up to ``max_batch_size`` rows; the batch is then cut to the largest
preferred size reachable with whole requests. Requests cancelled by their callers are
dropped, and those whose deadline passed are expired, as they are met.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from backends.base import Array
from gateway.batching.fair_queue import FairTags, evict_over_share, insert_in_tag_order
from gateway.batching.joining import Parts
from gateway.batching.observer import BatchTrace
from gateway.batching.policy import BatchPolicy
from gateway.batching.tensors import ShapeKey, cut_to_preferred, split
from gateway.errors import Overloaded


@dataclass(slots=True, eq=False)
class Pending:
    """One queued request (or one part of a split one)."""

    inputs: Mapping[str, Array]
    outputs: Sequence[str]
    rows: int
    key: ShapeKey
    deadline: float
    enqueued: float
    future: asyncio.Future[dict[str, Array]]
    trace: BatchTrace | None = None
    parts: Parts | None = None
    """The parts of the same request still to queue, when it was split."""
    flow: str = ""
    """The caller's share key (``batching.fair_queue``)."""
    weight: float = 1.0
    tag: float = 0.0
    """Start tag in fair queueing: the queue is kept in tag order."""


_OVER_SHARE = (
    "{} is overloaded and this caller holds more than its share of its queue; "
    "retry in about {:.3f} s"
)


class PendingQueue(deque[Pending]):
    """A batcher's queue: its requests in fair order (``batching.fair_queue``; arrival
    order for one caller), the rows they hold (read on every arrival), and the flows'
    tags."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.tags = FairTags()

    def add(self, item: Pending) -> None:
        """Queue ``item`` in fair order, tagging it."""
        item.tag = self.tags.tag(item.flow, item.rows, item.weight)
        if not self or self[-1].tag <= item.tag:
            self.append(item)
        else:
            insert_in_tag_order(self, item)
        self.rows += item.rows

    def take(
        self, policy: BatchPolicy, now: float, expire: Callable[[Pending], None]
    ) -> list[Pending]:
        """Pop the next batch (``take_batch``), keeping the rows and virtual time in step."""
        batch = take_batch(self, policy, now, expire)
        if batch:
            self.tags.taken(batch[-1].tag)
        self.rows = sum(item.rows for item in self)
        return batch

    def make_room(self, flow: str, model: str, retry_after_s: float) -> bool:
        """Refuse (503, ``Retry-After``) the newest request of the flow most over its
        share to let one of ``flow`` in; False when no flow is over ``flow``'s share."""
        evicted = evict_over_share(self, flow)
        if evicted is None:
            return False
        self.rows -= evicted.rows
        message = _OVER_SHARE.format(model, retry_after_s)
        evicted.future.set_exception(Overloaded(message, retry_after_s=retry_after_s))
        return True


def take_batch(
    queue: deque[Pending], policy: BatchPolicy, now: float, expire: Callable[[Pending], None]
) -> list[Pending]:
    """Pop the next batch off ``queue``: the requests passed over stay queued, in order."""
    batch: list[Pending] = []
    skipped: list[Pending] = []
    live: list[Pending] = []  # every live request taken off the queue, in arrival order
    rows = 0
    while queue:
        item = queue.popleft()
        if item.future.done():  # cancelled by its caller: nothing to compute
            continue
        if item.deadline <= now:
            expire(item)
            continue
        live.append(item)
        if batch and (not policy.batching or item.key != batch[0].key):
            skipped.append(item)
            continue
        if rows + item.rows > policy.max_batch_size and batch:
            skipped.append(item)
            break
        batch.append(item)
        rows += item.rows
        if not policy.batching or rows >= policy.max_batch_size:
            break
    keep = cut_to_preferred(
        [i.rows for i in batch], policy.preferred_batch_sizes, policy.max_batch_size
    )
    if keep < len(batch):
        # Requests cut off the batch go back among those passed over in arrival order: one
        # passed over may have arrived between two that had joined the batch.
        taken = {id(item) for item in batch[:keep]}
        skipped = [item for item in live if id(item) not in taken]
    queue.extendleft(reversed(skipped))
    return batch[:keep]


def settle(batch: list[Pending], outcome: Mapping[str, Array] | BaseException) -> bool:
    """Hand every caller of ``batch`` its rows of ``outcome``, or the batch's error (also
    when the outputs do not match the batch's rows); True when the batch succeeded."""
    if not isinstance(outcome, BaseException):
        try:
            pieces = split(outcome, [item.rows for item in batch])
        except Exception as exc:  # outputs that do not match the batch
            outcome = exc
        else:
            for item, piece in zip(batch, pieces, strict=True):
                if not item.future.done():
                    item.future.set_result({name: piece[name] for name in item.outputs})
            return True
    for item in batch:
        fail_pending(item.future, outcome)
    return False


def fail_pending(future: asyncio.Future[dict[str, Array]], error: BaseException) -> None:
    """Fail one caller's future with a batch's error; a cancelled batch cancels it."""
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
