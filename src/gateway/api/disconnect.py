"""Watching for a client that goes away, without a Task per request.

uvicorn does not cancel a handler whose client left, so the inference path listens for
``http.disconnect`` while a request waits for its batch. Awaiting ``receive()`` in a Task
of its own (created, scheduled, then cancelled with an exception unwound through the
ASGI layers) cost 16 µs per request; ``DisconnectWatch`` costs 7 µs (docs/batching.md).
It steps ``receive()``'s coroutine itself, from the callbacks of the futures it waits on
(what a Task does, minus the scheduling), and stops it with ``close()``, which unwinds
it synchronously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from starlette.types import Message, Receive

logger = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that left before its answer: recorded, never sent."""


class Withdrawable(Protocol):
    """A queued request: its answer, or withdrawn from the queue."""

    def cancel(self) -> None:
        """Withdraw the request; it is skipped if still queued."""

    async def result(self) -> bytes:
        """The response body once the request's batch has run."""
        ...


async def answer_unless_gone(pending: Withdrawable, receive: Receive) -> bytes | None:
    """The response body, or None when the client disconnected first.

    uvicorn does not cancel a handler whose client left, so a ``DisconnectWatch`` listens
    for ``http.disconnect`` and withdraws the request from the queue: nothing is computed
    for nobody.
    """
    watch = DisconnectWatch(receive, pending.cancel)
    try:
        return await pending.result()
    except asyncio.CancelledError:
        if watch.disconnected:
            return None
        raise
    finally:
        watch.close()


class DisconnectWatch:
    """Calls ``on_disconnect`` once, when ``receive`` delivers ``http.disconnect``.

    Other messages (a body chunk nobody asked for) are dropped and listening goes on.
    Call ``close()`` before sending the response: after that ``on_disconnect`` never runs.
    """

    __slots__ = ("_coroutine", "_loop", "_on_disconnect", "_receive", "disconnected")

    def __init__(self, receive: Receive, on_disconnect: Callable[[], object]) -> None:
        self._receive = receive
        self._on_disconnect: Callable[[], object] | None = on_disconnect
        self._loop = asyncio.get_running_loop()
        self._coroutine: Coroutine[Any, Any, Message] | None = None
        self.disconnected = False
        self._advance()

    def _advance(self, _: object = None) -> None:
        """Run ``receive()`` until it waits on a future (resumed from that future's
        callback) or returns a message."""
        if self._on_disconnect is None:
            return
        if self._coroutine is None:
            self._coroutine = self._receive()  # type: ignore[assignment]
        coroutine = self._coroutine
        assert coroutine is not None
        try:
            awaited = coroutine.send(None)
        except StopIteration as stop:
            self._coroutine = None
            message: Message = stop.value
            if message.get("type") == "http.disconnect":
                self._disconnect()
            else:  # not for us; listen again from the next loop turn
                self._loop.call_soon(self._advance)
            return
        except asyncio.CancelledError:  # the server is shutting down
            self._stop_listening()
            return
        except Exception:
            logger.exception("receive() failed while watching for a disconnect")
            self._stop_listening()
            return
        if awaited is None:  # a bare yield asks for one loop turn, as under a Task
            self._loop.call_soon(self._advance)
        else:
            awaited._asyncio_future_blocking = False
            awaited.add_done_callback(self._advance)

    def _stop_listening(self) -> None:
        self._coroutine = None
        self._on_disconnect = None

    def _disconnect(self) -> None:
        callback, self._on_disconnect = self._on_disconnect, None
        self.disconnected = True
        if callback is not None:
            callback()

    def close(self) -> None:
        """Stop listening; the pending ``receive()`` is unwound now."""
        self._on_disconnect = None
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            try:
                coroutine.close()
            except RuntimeError:
                logger.debug("receive() would not stop when closed", exc_info=True)
