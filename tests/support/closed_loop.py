"""Closed-loop HTTP/1.1 clients over raw asyncio streams (httpx costs several times more
CPU per request, which on a 2-core machine is taken from the server under test).

``python -m support.closed_loop PORT PATH BODY_FILE TOKEN CONNECTIONS SECONDS`` runs a
flood in a process of its own: each connection resends at once after every answer,
503s included (it ignores Retry-After), and prints its status counts as JSON at the end.

An answer is awaited ``ANSWER_TIMEOUT_S`` at most: past it the request is counted as
``UNANSWERED`` and its connection closed, so that a request a server leaves unread (or
unanswered) fails the test that counts it instead of only slowing the run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

UNANSWERED = -1
"""The status counted for a request with no answer within ``ANSWER_TIMEOUT_S``."""
ANSWER_TIMEOUT_S = 20.0
"""Far past any answer of a run of a few seconds, however loaded the machine."""


@dataclass
class ClosedLoopResult:
    """What the clients of one run got."""

    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    """Of the answers with status 200."""

    @property
    def goodput(self) -> float:
        """200 answers per second."""
        return self.statuses[200] / self.seconds

    @property
    def ok_share(self) -> float:
        """The share of requests answered 200 (connection failures count as 0)."""
        total = sum(self.statuses.values())
        return self.statuses[200] / total if total else 0.0

    def percentile_ms(self, q: float) -> float:
        """Latency percentile of the 200 answers."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _head(port: int, path: str, body: bytes, token: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def closed_loop(
    port: int,
    path: str,
    body: bytes,
    token: str,
    connections: int,
    seconds: float,
    flowing: asyncio.Event | None = None,
) -> ClosedLoopResult:
    """``connections`` keep-alive connections, each sending its next request as soon as
    the last is answered, for ``seconds``; ``flowing`` is set once as many answers as
    connections have come."""
    result = ClosedLoopResult(seconds)
    request = _head(port, path, body, token) + body
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                sent = time.perf_counter()
                try:
                    status = await asyncio.wait_for(
                        _exchange(reader, writer, request), ANSWER_TIMEOUT_S
                    )
                except TimeoutError:
                    result.statuses[UNANSWERED] += 1
                    return
                except (ConnectionError, asyncio.IncompleteReadError):
                    result.statuses[0] += 1
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                result.statuses[status] += 1
                if flowing is not None and result.statuses.total() >= connections:
                    flowing.set()
                if status == 200:
                    result.latencies_ms.append((time.perf_counter() - sent) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return result


def main() -> None:
    """The flood of a separate process (see the module's docstring)."""
    port, path, body_file, token, connections, seconds = sys.argv[1:7]
    with open(body_file, "rb") as source:
        body = source.read()

    async def flood() -> ClosedLoopResult:
        flowing = asyncio.Event()
        run = asyncio.ensure_future(
            closed_loop(int(port), path, body, token, int(connections), float(seconds), flowing)
        )
        await flowing.wait()
        sys.stdout.write("flowing\n")
        sys.stdout.flush()
        return await run

    result = asyncio.run(flood())
    sys.stdout.write(json.dumps({str(code): n for code, n in result.statuses.items()}) + "\n")


if __name__ == "__main__":
    main()
