"""One future for a request that was split into parts on the batch axis."""

from __future__ import annotations

import asyncio

from backends.base import Array
from gateway.batching.tensors import join_rows


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
