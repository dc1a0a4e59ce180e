"""Load from concurrent clients for end-to-end tests: each posts one body in a loop until
stopped; the test waits for a number of further answers rather than for time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: when its request left and its answer came, its status (0 when the
    connection failed) and its JSON body (empty when it had none)."""

    sent: float
    received: float
    status: int
    document: dict[str, Any]


class Load:
    """``clients`` clients posting ``body`` to ``url`` with ``headers``."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any],
        *,
        clients: int = 16,
        guard_s: float = 60.0,
    ) -> None:
        self.url = url
        self.headers = headers
        self.body = body
        self.clients = clients
        self.guard_s = guard_s
        self.answers: list[Answer] = []
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._target = 0
        self._reached = asyncio.Event()

    def start(self) -> None:
        """Start the clients."""
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]

    async def _client(self) -> None:
        async with httpx.AsyncClient(timeout=self.guard_s) as http:
            while not self._stopped.is_set():
                sent = time.monotonic()
                try:
                    answer = await http.post(self.url, json=self.body, headers=self.headers)
                    status, document = answer.status_code, _json(answer)
                except httpx.HTTPError as exc:
                    status, document = 0, {"error": type(exc).__name__}
                self.answers.append(Answer(sent, time.monotonic(), status, document))
                if len(self.answers) >= self._target:
                    self._reached.set()

    async def more(self, count: int) -> None:
        """Wait until ``count`` more answers have come back (guarded)."""
        self._target = len(self.answers) + count
        self._reached.clear()
        await asyncio.wait_for(self._reached.wait(), self.guard_s)

    async def stop(self) -> None:
        """Stop the clients once their current requests are answered."""
        self._stopped.set()
        await asyncio.gather(*self._tasks)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        document = answer.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
