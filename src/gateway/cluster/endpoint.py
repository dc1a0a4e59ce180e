"""A worker's control endpoint: a Unix domain socket its sibling workers send changes
and statistics queries to (``gateway.cluster.wire`` is the protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.cluster.wire import ProtocolError, read_message, write_message
from gateway.errors import GatewayError

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

SOCKET_PREFIX = "worker-"
SOCKET_SUFFIX = ".sock"


def socket_path(directory: Path, pid: int) -> Path:
    """Where the worker with process id ``pid`` listens."""
    return directory / f"{SOCKET_PREFIX}{pid}{SOCKET_SUFFIX}"


class ControlEndpoint:
    """Listens on ``path`` (mode 0600) and answers each request with ``handler``'s result.

    A request must arrive within ``read_timeout_s`` of the connection; the handler's
    domain errors travel back as their message, anything else as a generic error (logged).
    """

    def __init__(self, path: Path, handler: Handler, *, read_timeout_s: float = 10.0) -> None:
        self.path = path
        self._handler = handler
        self._read_timeout_s = read_timeout_s
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Start listening (a socket file left by a dead process of the same id goes)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        """Stop listening and remove the socket file; requests being answered finish."""
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._answer(reader)
            await write_message(writer, answer)
        except (ConnectionError, ProtocolError):
            pass  # the sibling gave up (its own timeout) or sent nonsense: nobody to tell
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._read_timeout_s):
                request = await read_message(reader)
        except TimeoutError:
            return {"ok": False, "error": "no request within the time limit"}
        try:
            return {"ok": True, "result": await self._handler(request)}
        except GatewayError as exc:
            return {"ok": False, "error": exc.message}
        except ProtocolError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception:
            logger.exception("control request %r failed", request.get("op"))
            return {"ok": False, "error": "internal error (logged by that worker)"}
