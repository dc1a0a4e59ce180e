"""What a serving process does when told to stop, before uvicorn's shutdown begins.

Readiness answers 503 from the moment SIGTERM (or SIGINT) arrives. With
``shutdown_delay_s``, uvicorn hears of the signal only that much later: connections are
still accepted and requests served meanwhile, so that a load balancer probing readiness
stops sending before the listener closes. A second signal starts the shutdown at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from gateway.api.state import AppState
from gateway.serving.heap import settle_heap
from gateway.settings import Settings

SIGNALS = (signal.SIGTERM, signal.SIGINT)

SignalHandler = Callable[[int, FrameType | None], object]


def drain_before(
    handler: SignalHandler, begin_draining: Callable[[], None], delay_s: float
) -> SignalHandler:
    """A signal handler that starts draining at once and calls ``handler`` after
    ``delay_s`` (at once for a second signal, or with no delay)."""
    timers: list[threading.Timer] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        begin_draining()
        if delay_s <= 0 or timers:
            for timer in timers:
                timer.cancel()
            handler(signum, frame)
            return
        # A timer thread: the handler only sets uvicorn's flags, safe from any thread.
        timer = threading.Timer(delay_s, handler, (signum, None))
        timer.daemon = True
        timers.append(timer)
        timer.start()

    return on_signal


def hook_shutdown_signals(begin_draining: Callable[[], None], delay_s: float) -> None:
    """Wrap the handlers uvicorn installed for SIGTERM and SIGINT (it restores its own
    predecessors when it stops); main thread only, as Python's signals are."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if callable(current):
            signal.signal(sig, drain_before(current, begin_draining, delay_s))


def on_serving_ready(settings: Settings) -> Callable[[AppState], None]:
    """What ``tensorgate serve`` does once its models are loaded: settle the heap, and
    make the shutdown signals flip readiness first."""

    def ready(state: AppState) -> None:
        settle_heap()
        hook_shutdown_signals(state.lifecycle.begin_draining, settings.shutdown_delay_s)

    return ready
