"""Helpers of the client tests: a real ``tensorgate serve`` process and held-out digits."""

from __future__ import annotations

import queue
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TENSORGATE = Path(sys.executable).with_name("tensorgate")
STARTUP_TIMEOUT_S = 60.0  # a hang guard only: we wait for uvicorn's own startup line


@dataclass(frozen=True)
class LiveServer:
    """Where the server listens, and a token it accepts for inference on ``digits``."""

    base_url: str
    token: str


@dataclass(frozen=True)
class Digits:
    """Held-out rows of scikit-learn's digits data set and their true labels."""

    pixels: list[list[float]]
    labels: list[int]


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pump(stream: Iterator[str], lines: queue.Queue[str | None]) -> None:
    """Forward the server's log lines; keeps draining so the pipe never fills up."""
    for line in stream:
        lines.put(line)
    lines.put(None)
