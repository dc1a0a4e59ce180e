"""What a serving process does when told to stop, before uvicorn's shutdown begins.

Readiness answers 503 from the moment SIGTERM (or SIGINT) arrives. With
``shutdown_delay_s``, uvicorn hears of the signal only that much later: connections are
still accepted and requests served meanwhile, so that a load balancer probing readiness
stops sending before the listener closes. A second signal starts the shutdown at once.
Before uvicorn hears of it, the connections waiting in the listen backlog are taken and
served (``gateway.serving.backlog``), so closing the listener resets none of them.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

from gateway.api.state import AppState
from gateway.serving.backlog import BacklogAdmission, SignalHandler, serving_server
from gateway.serving.heap import settle_heap
from gateway.settings import Settings

SIGNALS = (signal.SIGTERM, signal.SIGINT)


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


def hook_shutdown_signals(
    begin_draining: Callable[[], None], delay_s: float, admission_wait_s: float | None
) -> None:
    """Wrap the handlers uvicorn installed for SIGTERM and SIGINT (it restores its own
    predecessors when it stops): readiness first, then after ``delay_s`` the backlog
    (unless ``admission_wait_s`` is None; when the handler is a uvicorn server's, whose
    loop is running), then uvicorn. Main thread only, as Python's signals are."""
    if threading.current_thread() is not threading.main_thread():
        return
    admission: BacklogAdmission | None = None
    for sig in SIGNALS:
        current: SignalHandler | int | None = signal.getsignal(sig)
        if not callable(current):
            continue
        if admission_wait_s is not None and (server := serving_server(current)) is not None:
            loop = asyncio.get_running_loop()
            admission = admission or BacklogAdmission(server, loop, admission_wait_s)
            current = admission.before(current)
        signal.signal(sig, drain_before(current, begin_draining, delay_s))


def on_serving_ready(settings: Settings) -> Callable[[AppState], None]:
    """What ``tensorgate serve`` does once its models are loaded: settle the heap, make
    the shutdown signals flip readiness first and, unless the HTTP implementation is
    uvicorn's own ``h11`` (which leans on none of its internals), take the backlog."""
    admission_wait_s = None if settings.http_protocol == "h11" else settings.shutdown_idle_close_s

    def ready(state: AppState) -> None:
        settle_heap()
        hook_shutdown_signals(
            state.lifecycle.begin_draining, settings.shutdown_delay_s, admission_wait_s
        )

    return ready
