"""The recorded repository changes and the server-wide change lock."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gateway.cluster.changes import (
    CHANGES_FILE,
    Change,
    changes_lock,
    read_changes,
    record_change,
)

GUARD_S = 10


def test_changes_are_recorded_and_read_back(tmp_path: Path) -> None:
    assert read_changes(tmp_path) == {}
    record_change(tmp_path, "digits", Change("unload"))
    record_change(tmp_path, "mlp", Change("load", {"parameters": {"config": "{}"}}))
    record_change(tmp_path, "digits", Change("load"))  # the last change of a model counts
    assert read_changes(tmp_path) == {
        "digits": Change("load"),
        "mlp": Change("load", {"parameters": {"config": "{}"}}),
    }
    assert sorted(os.listdir(tmp_path)) == [CHANGES_FILE]  # nothing staged left behind


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[]", '{"models": 3}', '{"models": {"m": {"action": "explode"}}}'],
)
def test_a_broken_file_is_ignored(tmp_path: Path, text: str) -> None:
    (tmp_path / CHANGES_FILE).write_text(text)
    assert read_changes(tmp_path) == {}


async def test_the_lock_lets_one_holder_in_at_a_time(tmp_path: Path) -> None:
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with changes_lock(tmp_path):
            order.append("first in")
            first_in.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with changes_lock(tmp_path):
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await asyncio.wait_for(first_in.wait(), GUARD_S)
    release_first.set()
    await asyncio.wait_for(asyncio.gather(*tasks), GUARD_S)
    assert order == ["first in", "first out", "second in"]


async def test_a_cancelled_waiter_does_not_keep_the_lock(tmp_path: Path) -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with changes_lock(tmp_path):
            held.set()
            await release.wait()

    holding = asyncio.create_task(holder())
    await asyncio.wait_for(held.wait(), GUARD_S)
    waiting = asyncio.Event()

    async def wait_for_the_lock() -> None:
        waiting.set()  # it runs on until it waits for the lock, before this task resumes
        async with changes_lock(tmp_path):
            pytest.fail("the lock was taken while held")

    waiter = asyncio.create_task(wait_for_the_lock())
    await asyncio.wait_for(waiting.wait(), GUARD_S)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await asyncio.wait_for(holding, GUARD_S)

    async def take() -> None:
        async with changes_lock(tmp_path):
            pass

    await asyncio.wait_for(take(), GUARD_S)  # the cancelled waiter let go once it got it
