"""For tests that start ``tensorgate serve --workers N`` themselves: a port, the start-up."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from support.paths import DEMO_MODELS


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


async def spawn_workers(
    port: int, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """``tensorgate serve --workers 2`` of the demo models on ``port`` (info level, stderr
    piped for ``workers_started``), in an environment without the caller's TENSORGATE_*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TENSORGATE_")}
    exe = Path(sys.executable).with_name("tensorgate")
    return await asyncio.create_subprocess_exec(
        str(exe), "serve", "--models", str(DEMO_MODELS), "--port", str(port),
        "--workers", "2", "--log-level", "info", *args,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        env={**clean, **(env or {})},
    )  # fmt: skip
