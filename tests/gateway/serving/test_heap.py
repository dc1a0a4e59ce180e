"""The garbage-collector settings of a serving process (gateway.serving.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.serving import workers
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
    calls: list[None] = []
    app = create_app(make_settings(repository), on_ready=lambda: calls.append(None))
    assert calls == []
    async with LifespanManager(app):
        assert calls == [None]


def test_serving_processes_tune_the_collector_and_tests_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, object]] = []
    monkeypatch.setattr(workers, "create_app", lambda settings, **kwargs: made.append(kwargs))
    workers.create_worker_app()
    assert made == [{"on_ready": settle_heap}]
