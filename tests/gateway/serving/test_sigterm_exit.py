"""SIGTERM ends a one-process server with status 0, and a second SIGTERM cannot interrupt
the clean-up that follows (``gateway.serving.run.sigterm_exits_0``)."""

from __future__ import annotations

import os
import signal

import pytest

from gateway.serving.run import sigterm_exits_0


def test_the_first_sigterm_exits_0_and_a_second_is_ignored() -> None:
    outer = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exited, sigterm_exits_0():
            os.kill(os.getpid(), signal.SIGTERM)
        assert exited.value.code == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: no SystemExit, the test goes on
    finally:
        signal.signal(signal.SIGTERM, outer)


def test_without_sigterm_the_handler_found_is_put_back() -> None:
    outer = signal.getsignal(signal.SIGTERM)
    with sigterm_exits_0():
        assert signal.getsignal(signal.SIGTERM) is not outer
    assert signal.getsignal(signal.SIGTERM) is outer
