"""One-off calls of the soak beside its clients: readiness, the repository API, and the
server's log read as it grows."""

from __future__ import annotations

import asyncio
from pathlib import Path

from servers import Server
from soak.clients import Answer, read_answer

READY_TIMEOUT_S = 90.0
CALL_TIMEOUT_S = 120.0
"""A repository load with warm-up on two busy workers."""


async def call(port: int, method: str, path: str, token: str | None = None) -> Answer:
    """``method path`` on a connection of its own, without a body."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    async with asyncio.timeout(CALL_TIMEOUT_S):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            return await read_answer(reader)
        finally:
            writer.close()


async def ready(server: Server) -> None:
    """Return once ``server`` answers its readiness route 200; fail if it exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while loop.time() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}")
        try:
            if (await call(server.port, "GET", "/v2/health/ready")).status == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass  # not listening yet
        await asyncio.sleep(0.2)  # polling a child process from outside
    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S:.0f} s")


class LogWatch:
    """Counts a marker in a log file as it grows, reading only what was appended."""

    def __init__(self, path: Path, marker: bytes) -> None:
        self.path, self.marker = path, marker
        self.offset = 0
        self.seen = 0
        self.tail = b""

    def count(self) -> int:
        """Occurrences of the marker so far."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = self.tail + log.read()
        self.offset += len(chunk) - len(self.tail)
        # A marker cut in two by the end of the file is counted once it is whole.
        cut = chunk.rfind(b"\n") + 1
        self.seen += chunk[:cut].count(self.marker)
        self.tail = chunk[cut:]
        return self.seen
