"""Shutdown signals flip readiness first, and reach uvicorn after ``shutdown_delay_s`` (and
the listen backlog, taken unless the HTTP implementation is uvicorn's own ``h11``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType, SimpleNamespace
from typing import cast

import pytest

from gateway.api.state import AppState, Lifecycle
from gateway.serving import draining
from gateway.serving.draining import drain_before, hook_shutdown_signals, on_serving_ready
from gateway.settings import HttpProtocol, Settings

GUARD_S = 10


class Recorder:
    """Stands in for uvicorn's handler and for the lifecycle's draining flag."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self.handled = threading.Event()
        self.signals: list[int] = []

    def begin(self) -> None:
        self.draining.set()

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)
        self.handled.set()


def test_without_a_delay_the_signal_goes_on_at_once() -> None:
    seen = Recorder()
    drain_before(seen.handler, seen.begin, 0)(signal.SIGTERM, None)
    assert seen.draining.is_set()
    assert seen.signals == [signal.SIGTERM]


def test_with_a_delay_readiness_flips_first_and_the_signal_follows() -> None:
    seen = Recorder()
    on_signal = drain_before(seen.handler, seen.begin, 0.05)
    on_signal(signal.SIGTERM, None)
    assert seen.draining.is_set()
    assert seen.handled.wait(GUARD_S)
    assert seen.signals == [signal.SIGTERM]


def test_a_second_signal_does_not_wait_for_the_delay() -> None:
    seen = Recorder()
    on_signal = drain_before(seen.handler, seen.begin, 3600)
    on_signal(signal.SIGTERM, None)
    assert seen.signals == []
    on_signal(signal.SIGINT, None)
    assert seen.signals == [signal.SIGINT]


@pytest.fixture
def restored_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


@pytest.mark.usefixtures("restored_sigterm")
def test_the_hook_wraps_the_installed_handler() -> None:
    seen = Recorder()
    signal.signal(signal.SIGTERM, seen.handler)
    hook_shutdown_signals(seen.begin, 0, 0.5)
    signal.raise_signal(signal.SIGTERM)
    assert seen.draining.is_set()
    assert seen.signals == [signal.SIGTERM]


@pytest.mark.parametrize(("protocol", "admission_wait_s"), [("coalescing", 0.25), ("h11", None)])
def test_the_backlog_is_taken_unless_the_protocol_is_uvicorns_own_h11(
    monkeypatch: pytest.MonkeyPatch, protocol: HttpProtocol, admission_wait_s: float | None
) -> None:
    hooked: list[float | None] = []
    monkeypatch.setattr(draining, "settle_heap", lambda: None)
    monkeypatch.setattr(
        draining, "hook_shutdown_signals", lambda _begin, _delay, wait: hooked.append(wait)
    )
    settings = Settings(http_protocol=protocol, shutdown_idle_close_s=0.25)
    on_serving_ready(settings)(cast(AppState, SimpleNamespace(lifecycle=Lifecycle())))
    assert hooked == [admission_wait_s]
