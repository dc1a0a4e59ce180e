"""The garbage-collector settings of a serving process (gateway.serving.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from conftest import make_settings
from gateway.api import app as app_module
from gateway.serving.heap import YOUNG_GENERATION_THRESHOLD, settle_heap


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


@pytest.mark.parametrize("serving_process", [True, False])
async def test_only_a_serving_process_tunes_the_collector(
    repository: Path, monkeypatch: pytest.MonkeyPatch, serving_process: bool
) -> None:
    calls: list[None] = []
    monkeypatch.setattr(app_module, "settle_heap", lambda: calls.append(None))
    app = app_module.create_app(make_settings(repository), serving_process=serving_process)
    async with LifespanManager(app):
        assert len(calls) == (1 if serving_process else 0)
