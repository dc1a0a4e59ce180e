"""Requests split into parts on the batch axis: their parts, queued in turn, and one
future for the whole request, joined back in order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from backends.base import Array
from gateway.batching.tensors import join_rows

Part = tuple[Mapping[str, Array], asyncio.Future[dict[str, Array]]]
"""A part's inputs and the future of its rows."""


@dataclass(slots=True, eq=False)
class Parts:
    """The parts of a split request not queued yet, each with the future of its rows.

    They are queued one at a time, each once an earlier part's batch has run, so that the
    requests arriving meanwhile take their turns between them: a request of thousands of
    rows does not make every request behind it wait for all of them.
    """

    pieces: deque[Part]
    joined: asyncio.Future[dict[str, Array]]
    """The request's own future: once it is done (failed, cancelled), no part follows."""

    def next(self) -> Part | None:
        """The next part to queue, or None once all are queued or the request is over."""
        if not self.pieces or self.joined.done():
            return None
        return self.pieces.popleft()


class SplitRequests:
    """One batcher's split requests that still have parts to queue."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[Parts] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def split(self, pieces: list[dict[str, Array]]) -> Parts:
        """The parts of a request cut into ``pieces``, none queued yet; its future is
        ``Parts.joined``."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in pieces]
        parts = Parts(deque(zip(pieces, futures, strict=True)), join_futures(futures))
        self._waiting.append(parts)
        return parts

    def unqueued(self) -> int:
        """Parts waiting for their turn to queue (they count against the queue bound)."""
        self._waiting = [p for p in self._waiting if p.pieces and not p.joined.done()]
        return sum(len(parts.pieces) for parts in self._waiting)


def join_futures(parts: list[asyncio.Future[dict[str, Array]]]) -> asyncio.Future[dict[str, Array]]:
    """Their outputs joined in order, the first failure, or cancelled; a failure or
    cancelling the result withdraws every part still queued (nothing is computed for an
    answer that can no longer be whole)."""
    gathered = asyncio.gather(*parts)
    joined: asyncio.Future[dict[str, Array]] = asyncio.get_running_loop().create_future()

    def finish(done: asyncio.Future[list[dict[str, Array]]]) -> None:
        error = None if done.cancelled() else done.exception()  # retrieved either way
        if joined.done():
            return
        if done.cancelled():
            joined.cancel()
        elif error is not None:
            joined.set_exception(error)
            for part in parts:
                part.cancel()
        else:
            joined.set_result(join_rows(done.result()))

    def withdraw(outer: asyncio.Future[dict[str, Array]]) -> None:
        if outer.cancelled():
            gathered.cancel()

    gathered.add_done_callback(finish)
    joined.add_done_callback(withdraw)
    return joined
