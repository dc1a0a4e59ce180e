"""The other workers of the server, reached through their control endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.cluster.endpoint import SOCKET_PREFIX, SOCKET_SUFFIX
from gateway.cluster.wire import ProtocolError, read_message, write_message


@dataclass(frozen=True, slots=True)
class Reply:
    """One sibling's answer: ``result``, or ``error`` saying why there is none."""

    worker: str
    """``worker <pid>``, as messages name it."""
    result: Any = None
    error: str | None = None


class Siblings:
    """Every worker's endpoint in ``directory`` but this one's (``own``)."""

    def __init__(self, directory: Path, own: Path, *, timeout_s: float) -> None:
        self._directory = directory
        self._own = own
        self._timeout_s = timeout_s

    def endpoints(self) -> list[Path]:
        """The sibling sockets there now (a worker starting up adds its own first)."""
        return sorted(
            path
            for path in self._directory.glob(f"{SOCKET_PREFIX}*{SOCKET_SUFFIX}")
            if path != self._own
        )

    async def ask_all(self, request: dict[str, Any]) -> list[Reply]:
        """Send ``request`` to every sibling at once; one reply from each that is alive.

        A sibling that died (its socket refuses connections) is left out, and its socket
        file removed: the supervisor starts another worker, which reads the recorded
        changes itself. Each sibling has ``timeout_s`` to answer.
        """
        replies = await asyncio.gather(*(self._ask(path, request) for path in self.endpoints()))
        return [reply for reply in replies if reply is not None]

    async def _ask(self, path: Path, request: dict[str, Any]) -> Reply | None:
        worker = f"worker {path.name.removeprefix(SOCKET_PREFIX).removesuffix(SOCKET_SUFFIX)}"
        writer = None
        try:
            async with asyncio.timeout(self._timeout_s):
                reader, writer = await asyncio.open_unix_connection(path)
                await write_message(writer, request)
                answer = await read_message(reader)
        except FileNotFoundError:
            return None  # it stopped in the meantime
        except ConnectionRefusedError:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, path)  # no process listens: a dead one's
            return None
        except TimeoutError:
            return Reply(worker, error=f"no answer within {self._timeout_s:g} s")
        except (OSError, ProtocolError) as exc:
            return Reply(worker, error=f"control connection failed: {exc}")
        finally:
            if writer is not None:
                writer.close()
        if answer.get("ok") is True:
            return Reply(worker, result=answer.get("result"))
        return Reply(worker, error=str(answer.get("error", "no reason given")))
