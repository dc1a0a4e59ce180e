"""For tests that start ``tensorgate serve --workers N`` themselves: a port, the start-up."""

from __future__ import annotations

import asyncio
import socket


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def workers_started(stream: asyncio.StreamReader, count: int) -> None:
    """Return once ``count`` worker processes have logged that their app started."""
    seen = 0
    while seen < count:
        line = await stream.readline()
        if not line:
            raise RuntimeError("tensorgate exited before its workers started")
        seen += b"Application startup complete" in line
