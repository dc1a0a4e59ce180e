"""The soak's clients: keep-alive HTTP/1.1 connections over raw asyncio streams (httpx
costs several times more CPU per request, taken from the server on a small machine),
each sending at a steady pace, cycling through the request kinds, and reconnecting now
and then so that connections keep being opened and closed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from soak.kinds import Kind
from soak.outcomes import Lost, Tally

ANSWER_TIMEOUT_S = 45.0
"""Longer than the models' default deadline (30 s, then 504): past it, no answer."""
REQUESTS_PER_CONNECTION = 100
CONNECT_RETRY_S = 0.5


@dataclass(frozen=True)
class Answer:
    """A response as the client read it."""

    status: int
    retry_after: bool
    body: bytes
    closing: bool
    """The server said ``Connection: close``."""


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One response off ``reader`` (``Content-Length`` bodies: what tensorgate sends)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed without an answer")
    status = int(status_line.split()[1])
    length, retry_after, closing = 0, False, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"retry-after":
            retry_after = True
        elif key == b"connection":
            closing = value.strip().lower() == b"close"
    return Answer(status, retry_after, await reader.readexactly(length), closing)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.port: int = writer.get_extra_info("sockname")[1]
        self.used = 0

    def reusable(self) -> bool:
        """Still open on both sides: a keep-alive connection the server closed while it
        was idle is replaced before a request is written to it, as HTTP clients do."""
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and self.used < REQUESTS_PER_CONNECTION
        )

    def close(self) -> None:
        self.writer.close()


class Clients:
    """Connections for several callers, each sending its share of ``rate_per_s``."""

    def __init__(
        self,
        port: int,
        kinds: Sequence[Kind],
        tokens: Sequence[str],
        per_caller: int,
        rate_per_s: float,
        tally: Tally,
    ) -> None:
        self.port, self.kinds, self.tally = port, kinds, tally
        self.requests = [[kind.request(port, token) for kind in kinds] for token in tokens]
        self.per_caller = per_caller
        self.interval_s = len(tokens) * per_caller / rate_per_s
        self.connections = len(tokens) * per_caller

    async def run(self, started: float, seconds: float) -> None:
        """Send until ``seconds`` after ``started`` (loop time), then wait for the last
        answers (each bounded by ``ANSWER_TIMEOUT_S``)."""
        await asyncio.gather(
            *(
                self._connection(requests, offset, started, seconds)
                for requests in self.requests
                for offset in range(self.per_caller)
            )
        )

    async def _open(self) -> _Connection | None:
        try:
            return _Connection(*await asyncio.open_connection("127.0.0.1", self.port))
        except OSError:
            self.tally.not_connected += 1
            return None

    async def _connection(
        self, requests: list[bytes], offset: int, started: float, seconds: float
    ) -> None:
        loop = asyncio.get_running_loop()
        # Connections start spread over one interval, and over the kinds.
        due = started + self.interval_s * offset / self.per_caller
        turn = offset
        conn: _Connection | None = None
        while (now := loop.time()) < started + seconds:
            if due > now:
                await asyncio.sleep(due - now)
            due = max(due + self.interval_s, loop.time())  # no burst to catch up after a stall
            if conn is not None and not conn.reusable():
                conn.close()
                conn = None
            if conn is None and (conn := await self._open()) is None:
                await asyncio.sleep(CONNECT_RETRY_S)
                continue
            index = turn % len(self.kinds)
            turn += 1
            if not await self._send(conn, self.kinds[index], requests[index], started):
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    async def _send(self, conn: _Connection, kind: Kind, request: bytes, started: float) -> bool:
        """One request on ``conn``, its outcome tallied; False when the connection is done."""
        loop = asyncio.get_running_loop()
        sent = loop.time() - started
        self.tally.sent += 1
        conn.used += 1
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                conn.writer.write(request)
                answer = await read_answer(conn.reader)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            reason = (
                f"no answer in {ANSWER_TIMEOUT_S:.0f} s"
                if isinstance(exc, TimeoutError)
                else (type(exc).__name__)
            )
            self.tally.lost.append(Lost(kind.label, conn.port, sent, loop.time() - started, reason))
            return False
        self.tally.answer(
            loop.time() - started,
            kind.label,
            kind.remote,
            answer.status,
            answer.retry_after,
            answer.body,
        )
        return not answer.closing
