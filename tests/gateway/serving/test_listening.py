"""Serving on a socket whose port is known: the port bound is told once the server listens."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE

from gateway.serving.listening import ListeningServer, bound_port, serve_one

GUARD_S = 30


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app: 200 "hello" to any request."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def _failing(_scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app whose start-up fails."""
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no models"})


def _options() -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 0, "lifespan": "on", "log_config": None}


def test_the_port_is_read_off_the_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert bound_port([sock]) == sock.getsockname()[1] != 0


async def test_port_zero_is_told_as_the_port_bound_once_the_server_answers() -> None:
    told: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = ListeningServer(uvicorn.Config(_hello, **_options()), told.set_result)
    serving = asyncio.create_task(server.serve())
    try:
        port = await asyncio.wait_for(told, GUARD_S)
        assert port != 0
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), GUARD_S)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"5\r\nhello\r\n0\r\n\r\n")
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, GUARD_S)


def test_a_server_that_does_not_start_exits_untold() -> None:
    told: list[int] = []
    with pytest.raises(SystemExit) as stopped:
        serve_one(_failing, _options(), told.append)
    assert stopped.value.code == STARTUP_FAILURE
    assert told == []
