"""The fair-share views workers send each other: encoding, delivery, and how a sibling's
view drops out (its process died: at once; it went silent: past the age bound)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.cluster.shares import (
    MAX_FLOWS,
    ShareExchange,
    View,
    decode_view,
    encode_view,
    socket_path,
)

GUARD_S = 10.0
MAX_AGE_S = 0.1


def test_a_view_survives_its_datagram() -> None:
    view = View({"flood": 12, "polite": 3}, {"flood": 1.0, "polite": 2.5})
    assert decode_view(encode_view(view)) == view


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"n": {}}', b'{"n": [], "w": {}}', b'{"n": {"a": "x"}, "w": {"a": -1}}'],
)
def test_a_malformed_datagram_is_no_view_or_an_empty_one(data: bytes) -> None:
    assert decode_view(data) in (None, View())


def test_a_view_of_many_callers_keeps_the_busiest() -> None:
    counts = {f"caller-{n}": n + 1 for n in range(MAX_FLOWS + 50)}
    view = decode_view(encode_view(View(counts, dict.fromkeys(counts, 1.0))))
    assert view is not None
    assert len(view.in_progress) == MAX_FLOWS == len(view.weights)
    assert "caller-0" not in view.in_progress
    assert view.in_progress[f"caller-{MAX_FLOWS + 49}"] == MAX_FLOWS + 50


class Watcher:
    """Records the views an exchange reports, and wakes a test waiting for one."""

    def __init__(self) -> None:
        self.views: list[View] = []
        self._changed = asyncio.Event()

    def see(self, views: list[View]) -> None:
        self.views = views
        self._changed.set()

    async def until(self, condition: Callable[[list[View]], bool]) -> None:
        async with asyncio.timeout(GUARD_S):
            while not condition(self.views):
                self._changed.clear()
                await self._changed.wait()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Unix socket paths are short (108 bytes): a short directory of its own.
    return tmp_path_factory.mktemp("s")


@pytest.fixture
async def watched(directory: Path) -> AsyncIterator[tuple[ShareExchange, Watcher, Clock]]:
    """An exchange (worker 1, its own view empty) and what it reports, on a fake clock."""
    watcher, clock = Watcher(), Clock()
    exchange = ShareExchange(
        directory, View, watcher.see, tick_s=0.001, max_age_s=MAX_AGE_S, pid=1, clock=clock
    )
    exchange.start(asyncio.get_running_loop())
    yield exchange, watcher, clock
    exchange.close()


async def test_workers_see_each_others_views(
    directory: Path, watched: tuple[ShareExchange, Watcher, Clock]
) -> None:
    _exchange, watcher, _clock = watched
    load = View({"flood": 5}, {"flood": 1.0})
    other = ShareExchange(directory, lambda: load, lambda _: None, tick_s=0.001, max_age_s=1, pid=2)
    other.start(asyncio.get_running_loop())
    try:
        await watcher.until(lambda views: views == [load])
    finally:
        other.close()
    assert not socket_path(directory, 2).exists()


def sibling(directory: Path, to: Path) -> socket.socket:
    """A worker 3 that sends one view to ``to`` and then says nothing."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(socket_path(directory, 3)))
    sock.sendto(encode_view(View({"flood": 7}, {"flood": 1.0})), str(to))
    return sock


async def test_a_dead_workers_view_drops_out_at_once(
    directory: Path, watched: tuple[ShareExchange, Watcher, Clock]
) -> None:
    _exchange, watcher, _clock = watched
    sock = sibling(directory, socket_path(directory, 1))
    await watcher.until(lambda views: len(views) == 1)
    sock.close()  # killed: the kernel closes its socket; its file stays behind
    await watcher.until(lambda views: views == [])  # the fake clock never moved
    assert not socket_path(directory, 3).exists()


async def test_a_silent_workers_view_drops_out_past_the_age_bound(
    directory: Path, watched: tuple[ShareExchange, Watcher, Clock]
) -> None:
    exchange, watcher, clock = watched
    sock = sibling(directory, socket_path(directory, 1))
    try:
        await watcher.until(lambda views: len(views) == 1)
        clock.now += MAX_AGE_S / 2
        exchange.tick()
        assert len(watcher.views) == 1  # still young enough
        clock.now += MAX_AGE_S
        await watcher.until(lambda views: views == [])
    finally:
        sock.close()
