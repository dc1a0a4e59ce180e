"""Fails loudly when what SteppedWatch relies on moves; checks TaskWatch behaves the same.

``SteppedWatch`` (gateway.api.pipeline.disconnect) drives ``receive()``'s coroutine by
hand, as a Task would: it relies on asyncio's Task protocol (a coroutine suspends by
yielding a future whose ``_asyncio_future_blocking`` is set) and on uvicorn's ``receive``
being a plain coroutine. If a test here fails after a Python or uvicorn upgrade, serve
with ``disconnect_watch: task`` until the stepped watch is fixed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import pytest
from starlette.types import Message
from uvicorn.protocols.http import h11_impl, httptools_impl

from gateway.api.pipeline.disconnect import SteppedWatch, TaskWatch, Watch

GUARD_S = 5  # hang guard only

WatchFactory = Callable[..., Watch]


def test_uvicorns_receive_is_a_plain_coroutine_function() -> None:
    for module in (httptools_impl, h11_impl):
        assert inspect.iscoroutinefunction(module.RequestResponseCycle.receive), module.__name__


async def test_a_suspended_coroutine_yields_a_blocking_asyncio_future() -> None:
    event = asyncio.Event()
    coroutine = event.wait()
    awaited = coroutine.send(None)
    assert isinstance(awaited, asyncio.Future)
    assert awaited._asyncio_future_blocking is True  # what SteppedWatch resets
    coroutine.close()


class Peer:
    """A client's side of ``receive``: messages handed over one at a time."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.calls = 0

    async def receive(self) -> Message:
        self.calls += 1
        return await self.messages.get()


@pytest.fixture(params=[SteppedWatch, TaskWatch], ids=["stepped", "task"])
def watch_kind(request: pytest.FixtureRequest) -> WatchFactory:
    factory: WatchFactory = request.param
    return factory


async def test_both_watches_hear_a_disconnect_once_past_stray_body_chunks(
    watch_kind: WatchFactory,
) -> None:
    peer, gone = Peer(), asyncio.Event()
    heard: list[None] = []

    def on_disconnect() -> None:
        heard.append(None)
        gone.set()

    watch = watch_kind(peer.receive, on_disconnect)
    await peer.messages.put({"type": "http.request", "body": b"late", "more_body": False})
    await peer.messages.put({"type": "http.disconnect"})
    await asyncio.wait_for(gone.wait(), GUARD_S)
    assert watch.disconnected
    watch.close()
    assert heard == [None]
    assert peer.calls == 2


async def test_after_close_neither_watch_reports_anything(watch_kind: WatchFactory) -> None:
    peer = Peer()
    heard: list[None] = []
    watch = watch_kind(peer.receive, lambda: heard.append(None))
    await asyncio.sleep(0)  # let a Task start listening: the close must stop it anyway
    watch.close()
    await peer.messages.put({"type": "http.disconnect"})
    for _ in range(3):
        await asyncio.sleep(0)  # give a stray listener every chance to run
    assert heard == []
    assert not watch.disconnected
