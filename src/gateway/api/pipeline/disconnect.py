"""Watching for a client that goes away while its request waits: the fenced speed trick.

uvicorn does not cancel a handler whose client left, so the pipeline listens for
``http.disconnect`` while a request waits for its batch, and withdraws the request.

- ``TaskWatch`` (``disconnect_watch: task``) awaits ``receive()`` in a Task of its own:
  plain asyncio, nothing assumed. Creating, scheduling and cancelling that Task cost
  16 us per request on the development machine.
- ``SteppedWatch`` (``disconnect_watch: stepped``, the default) costs 7 us (``make
  bench-ab``, docs/benchmarks-ab.md: +15% req/s for ``mlp`` and +26% for ``digits`` at
  64 connections over ``TaskWatch``, 8,543 vs 7,440 and 9,875 vs 7,834): it steps
  ``receive()``'s coroutine itself from the done-callbacks of the futures it awaits (what
  a Task does, minus the scheduling) and stops it with ``close()``, which unwinds it
  synchronously. It relies on asyncio's Task protocol: a coroutine suspends by yielding
  an asyncio future whose ``_asyncio_future_blocking`` flag is set, or ``None`` for one
  loop turn; and on the server's ``receive`` being a plain coroutine that awaits only
  such futures (uvicorn's is; tests/gateway/api/pipeline/test_disconnect_internals.py
  fails loudly if either changes). Nothing outside this module touches those names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from starlette.types import Message, Receive

from gateway.settings import DisconnectWatchKind

logger = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that left before its answer: recorded, never sent."""


class Withdrawable(Protocol):
    """A queued request: its answer, or withdrawn from the queue."""

    @property
    def settled(self) -> bool:
        """True once the request's outputs (or its error) are there."""
        ...

    def cancel(self) -> None:
        """Withdraw the request; it is skipped if still queued."""

    async def result(self) -> bytes:
        """The response body once the request's batch has run."""
        ...


class Watch(Protocol):
    """Listens for ``http.disconnect`` until closed."""

    disconnected: bool

    def close(self) -> None:
        """Stop listening."""


async def answer_unless_gone(
    pending: Withdrawable, receive: Receive, kind: DisconnectWatchKind = "stepped"
) -> bytes | None:
    """The response body, or None when the client disconnected first (the request is
    then withdrawn from the queue: nothing is computed for nobody)."""
    if pending.settled:  # run already (inline, alone): nothing to wait for
        return await pending.result()
    watch: Watch = (
        SteppedWatch(receive, pending.cancel)
        if kind == "stepped"
        else TaskWatch(receive, pending.cancel)
    )
    try:
        return await pending.result()
    except asyncio.CancelledError:
        if watch.disconnected:
            return None
        raise
    finally:
        watch.close()


class SteppedWatch:
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


class TaskWatch:
    """Calls ``on_disconnect`` once, when ``receive`` delivers ``http.disconnect``, from a
    Task of its own; ``close()`` cancels the Task."""

    def __init__(self, receive: Receive, on_disconnect: Callable[[], object]) -> None:
        self.disconnected = False
        self._task = asyncio.get_running_loop().create_task(self._listen(receive, on_disconnect))

    async def _listen(self, receive: Receive, on_disconnect: Callable[[], object]) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass  # a body chunk nobody asked for: keep listening
        except Exception:
            logger.exception("receive() failed while watching for a disconnect")
            return
        self.disconnected = True
        on_disconnect()

    def close(self) -> None:
        """Stop listening."""
        self._task.cancel()
