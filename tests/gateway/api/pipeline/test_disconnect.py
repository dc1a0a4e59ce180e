"""SteppedWatch: listens for http.disconnect by stepping receive() without a Task."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from gateway.api.pipeline.disconnect import SteppedWatch

GUARD_S = 5  # hang guard only


class Peer:
    """A receive() shaped like uvicorn's: waits on an event, then reports what happened."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.messages: list[dict[str, Any]] = []
        self.calls = 0
        self.unwound = 0

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        try:
            while not self.messages:
                self.event.clear()
                await self.event.wait()
            return self.messages.pop(0)
        finally:
            self.unwound += 1

    def deliver(self, message_type: str, **fields: Any) -> None:
        self.messages.append({"type": message_type, **fields})
        self.event.set()


async def watching(peer: Peer) -> tuple[SteppedWatch, asyncio.Event]:
    gone = asyncio.Event()
    return SteppedWatch(peer.receive, gone.set), gone


async def test_a_disconnect_calls_back_once() -> None:
    peer = Peer()
    watch, gone = await watching(peer)
    assert peer.calls == 1  # listening from the start, without waiting for a loop turn
    peer.deliver("http.disconnect")
    await asyncio.wait_for(gone.wait(), GUARD_S)
    assert watch.disconnected
    watch.close()
    assert peer.calls == 1


async def test_close_stops_listening_and_unwinds_the_pending_receive() -> None:
    peer = Peer()
    watch, gone = await watching(peer)
    watch.close()
    assert peer.unwound == 1
    assert not peer.event._waiters  # nothing left waiting
    peer.deliver("http.disconnect")
    await asyncio.sleep(0)  # a loop turn in which a live watch would have been called
    assert not gone.is_set()
    assert not watch.disconnected


async def test_other_messages_are_dropped_and_listening_goes_on() -> None:
    peer = Peer()
    watch, gone = await watching(peer)
    peer.deliver("http.request", body=b"late", more_body=False)
    peer.deliver("http.disconnect")
    await asyncio.wait_for(gone.wait(), GUARD_S)
    assert peer.calls == 2
    watch.close()


async def test_a_receive_that_yields_bare_is_resumed_on_the_next_turn() -> None:
    turns = 0

    async def receive() -> dict[str, Any]:
        nonlocal turns
        for _ in range(3):
            turns += 1
            await asyncio.sleep(0)  # a bare yield, not a future
        return {"type": "http.disconnect"}

    gone = asyncio.Event()
    watch = SteppedWatch(receive, gone.set)
    await asyncio.wait_for(gone.wait(), GUARD_S)
    assert turns == 3
    assert watch.disconnected


async def test_a_failing_receive_is_logged_and_never_reported_as_a_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        await broken
        raise AssertionError("unreachable")

    gone = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="gateway.api.pipeline.disconnect"):
        watch = SteppedWatch(receive, gone.set)
        broken.set_exception(OSError("connection reset"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert "receive() failed while watching for a disconnect" in caplog.text
    assert not gone.is_set()
    watch.close()


async def test_a_cancelled_receive_stops_the_watch_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = Peer()
    watch, gone = await watching(peer)
    waiter = next(iter(peer.event._waiters))
    with caplog.at_level(logging.DEBUG, logger="gateway.api.pipeline.disconnect"):
        waiter.cancel()  # as when the server cancels everything at shutdown
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert not caplog.records
    assert not gone.is_set()
    watch.close()
