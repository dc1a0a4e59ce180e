"""The garbage-collector settings of a serving process (gateway.serving.heap)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.api.state import AppState, Lifecycle
from gateway.serving import draining, workers
from gateway.serving.heap import YOUNG_GENERATION_THRESHOLD, settle_heap
from support.app import make_settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_what_survives_and_collects_the_young_less_often() -> None:
    survivor = [object()]
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(survivor)
    assert not any(tracked is survivor for tracked in gc.get_objects())  # frozen: not walked
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD


async def test_on_ready_runs_once_when_the_lifespan_starts(repository: Path) -> None:
    calls: list[AppState] = []
    app = create_app(make_settings(repository), on_ready=calls.append)
    assert calls == []
    async with LifespanManager(app):
        assert len(calls) == 1
        assert isinstance(calls[0], AppState)


def test_serving_processes_tune_the_collector_and_tests_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, Callable[[AppState], None]]] = []
    monkeypatch.setattr(workers, "create_app", lambda settings, **kwargs: made.append(kwargs))
    settled: list[bool] = []
    hooked: list[tuple[float, float]] = []
    monkeypatch.setattr(draining, "settle_heap", lambda: settled.append(True))
    monkeypatch.setattr(
        draining,
        "hook_shutdown_signals",
        lambda _begin, delay, admission_wait: hooked.append((delay, admission_wait)),
    )
    workers.create_worker_app()
    [kwargs] = made
    kwargs["on_ready"](cast(AppState, SimpleNamespace(lifecycle=Lifecycle())))
    assert settled == [True]
    assert hooked == [(0.0, 0.5)]
