"""On shutdown an idle connection closes once nothing has arrived for
``shutdown_idle_close_s``, never over a request that is in its socket but not yet read
(``LimitedHttpToolsProtocol.shutdown``)."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway.serving.connection_limits import (
    LimitedHttpToolsProtocol,
    unread_bytes,
)
from support.protocols import REQUEST, answer_ok, protocol_limits

GUARD_S = 10
LIMITS = protocol_limits(0.05)


async def served() -> tuple[asyncio.Transport, LimitedHttpToolsProtocol, socket.socket]:
    """One connection served by the protocol; returns its transport, protocol and the
    client's end."""
    loop = asyncio.get_running_loop()
    config = Config(app=answer_ok, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    server_end, client = socket.socketpair()
    client.settimeout(GUARD_S)
    transport, protocol = await loop.connect_accepted_socket(
        lambda: LimitedHttpToolsProtocol(
            config=config, server_state=state, app_state={}, _loop=loop, limits=LIMITS
        ),
        server_end,
    )
    assert isinstance(protocol, LimitedHttpToolsProtocol)
    return transport, protocol, client


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


async def test_an_idle_connection_closes_once_nothing_has_arrived() -> None:
    _, protocol, client = await served()
    with client:
        protocol.shutdown()
        assert await asyncio.to_thread(read_until_closed, client) == b""


async def test_a_request_in_the_socket_is_read_and_answered_before_the_close() -> None:
    transport, protocol, client = await served()
    with client:
        transport.pause_reading()  # as a busy loop: what arrives stays in the socket
        client.sendall(REQUEST)
        assert unread_bytes(transport) == len(REQUEST)
        protocol.shutdown()
        # Past the idle check (a timer due before this one): the bytes kept it open.
        await asyncio.sleep(2 * LIMITS.shutdown_idle_close_s)
        assert not transport.is_closing()
        transport.resume_reading()
        answer = await asyncio.to_thread(read_until_closed, client)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in answer.lower()
    assert answer.endswith(b"ok")
