"""A bounded asyncio HTTP/1.1 client sending requests at a fixed rate, honouring Retry-After.

Used where wrk cannot do the job: the overload run (clients that wait as told when they
get 503) and the memory run (a steady 70% of capacity). Keep-alive connections over raw
asyncio streams: httpx costs several times more CPU per request on this 2-core box.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

UNANSWERED = -1
"""The status counted for a request with no answer within ``ANSWER_TIMEOUT_S``."""
ANSWER_TIMEOUT_S = 30.0
"""Longest wait for one answer: a run always ends, and a lost request is counted."""


@dataclass
class PacedResult:
    """Outcome of a paced run."""

    seconds: float
    attempts: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    admitted_ms: list[float] = field(default_factory=list)
    gave_up: int = 0
    dropped: int = 0
    """Tries not sent because every connection was busy (the client's connection bound)."""

    @property
    def goodput(self) -> float:
        """Successful answers per second."""
        return self.statuses[200] / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile of admitted (200) requests, in ms."""
        if not self.admitted_ms:
            return float("nan")
        ordered = sorted(self.admitted_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, float | None]:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, retry_after = 0, None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"retry-after":
                retry_after = float(value)
        await self.reader.readexactly(length)
        return status, retry_after


class _NoConnection(Exception):
    """Every connection the client may open is busy: the request is not sent."""


class _Client:
    """Keep-alive connections shared by the requests of one paced run, at most
    ``max_connections`` open; a request waiting out its Retry-After holds none."""

    def __init__(
        self,
        host: str,
        port: int,
        head: bytes,
        body: bytes,
        result: PacedResult,
        max_connections: int | None = None,
    ) -> None:
        self.host, self.port, self.head, self.body = host, port, head, body
        self.result = result
        self.max_connections = max_connections
        self.open = 0
        self.idle: list[_Connection] = []

    async def request(self, max_attempts: int) -> None:
        """One logical request: retried after Retry-After on 503, up to ``max_attempts``."""
        result = self.result
        for attempt in range(max_attempts):
            started = time.perf_counter()
            result.attempts += 1
            try:
                status, retry_after = await asyncio.wait_for(self._exchange(), ANSWER_TIMEOUT_S)
            except TimeoutError:  # its connection is dropped with the cancelled exchange
                result.statuses[UNANSWERED] += 1
                return
            except _NoConnection:
                result.attempts -= 1
                result.dropped += 1
                return
            except (ConnectionError, asyncio.IncompleteReadError):
                result.statuses[0] += 1
                return
            result.statuses[status] += 1
            if status == 200:
                result.admitted_ms.append((time.perf_counter() - started) * 1000)
                return
            if status != 503 or attempt == max_attempts - 1:
                break
            await asyncio.sleep(retry_after or 1.0)  # as the server asked
        result.gave_up += 1

    async def _exchange(self) -> tuple[int, float | None]:
        """Send on an idle keep-alive connection, or a new one when the server has closed
        the idle one (uvicorn drops connections idle for 5 s): not a server error."""
        while self.idle:
            conn = self.idle.pop()
            try:
                answer = await conn.post(self.head, self.body)
            except (ConnectionError, asyncio.IncompleteReadError):
                self._discard(conn)
                continue
            self.idle.append(conn)
            return answer
        if self.max_connections is not None and self.open >= self.max_connections:
            raise _NoConnection
        self.open += 1
        try:
            conn = _Connection(*await asyncio.open_connection(self.host, self.port))
        except BaseException:
            self.open -= 1
            raise
        try:
            answer = await conn.post(self.head, self.body)
        except BaseException:
            self._discard(conn)
            raise
        self.idle.append(conn)
        return answer

    def saturated(self) -> bool:
        """True when a request now would find no connection to use."""
        return (
            not self.idle and self.max_connections is not None and self.open >= self.max_connections
        )

    def _discard(self, conn: _Connection) -> None:
        conn.writer.close()
        self.open -= 1

    def close(self) -> None:
        """Close the idle connections."""
        for conn in self.idle:
            conn.writer.close()


def _head(host: str, path: str, body: bytes, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


async def closed_run(
    host: str,
    port: int,
    path: str,
    body: bytes,
    connections: int,
    seconds: float,
    *,
    token: str | None = None,
    flowing: asyncio.Event | None = None,
) -> PacedResult:
    """``connections`` clients sending back to back for ``seconds``: this client's capacity.
    A 503 is not retried after its Retry-After: the next request goes at once. ``flowing``
    is set once as many answers as connections have come."""
    result = PacedResult(seconds)
    client = _Client(host, port, _head(host, path, body, token), body, result)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < end:
            await client.request(1)
            if flowing is not None and result.attempts >= connections:
                flowing.set()

    await asyncio.gather(*(worker() for _ in range(connections)))
    client.close()
    return result


async def paced_run(
    host: str,
    port: int,
    path: str,
    body: bytes,
    rate_per_s: float,
    seconds: float,
    *,
    max_connections: int,
    max_attempts: int = 2,
    token: str | None = None,
) -> PacedResult:
    """Offer ``rate_per_s`` requests per second for ``seconds``; each request retries a 503
    after its Retry-After, up to ``max_attempts`` tries. At most ``max_connections`` open:
    an arrival (or a retry) finding them all busy is counted as dropped, not sent."""
    result = PacedResult(seconds)
    head = _head(host, path, body, token)
    client = _Client(host, port, head, body, result, max_connections)
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while (now := loop.time()) < start + seconds:
        due = int((now - start) * rate_per_s) - sent
        sent += due
        for _ in range(due):
            if client.saturated():
                result.dropped += 1  # decided here: a task per unsent arrival costs CPU too
                continue
            task = loop.create_task(client.request(max_attempts))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(0.002)  # pacing tick of the load generator
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    client.close()
    return result
