"""At shutdown the listen backlog is taken and served before uvicorn closes its listeners
(``gateway.serving.backlog``), with a real uvicorn ``Server`` in this process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import uvloop
from uvicorn.config import Config
from uvicorn.server import Server

from gateway.serving.backlog import BacklogAdmission, accept_waiting, serving_server
from gateway.serving.connection_limits import LimitedHttpToolsProtocol
from support.pki import Pki, make_pki
from support.protocols import REQUEST, answer_ok, protocol_limits

GUARD_S = 10
LIMITS = protocol_limits(0.05)


LOOPS = pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)


@contextlib.asynccontextmanager
async def started_server(tls: Pki | None = None) -> AsyncIterator[Server]:
    """A started uvicorn server on a free loopback port (HTTPS with ``tls``'s server
    certificate), shut down on the way out."""
    # Any factory does (as serving/options.py hands it); uvicorn's annotation says a class.
    protocol: Any = functools.partial(LimitedHttpToolsProtocol, limits=LIMITS)
    config = Config(
        app=answer_ok,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        http=protocol,
        log_level="warning",
        ssl_certfile=None if tls is None else tls.server_cert,
        ssl_keyfile=None if tls is None else tls.server_key,
    )
    config.load()
    server = Server(config)
    server.lifespan = config.lifespan_class(config)  # as Server.serve does before startup
    await server.startup()
    try:
        yield server
    finally:
        await asyncio.wait_for(server.shutdown(), GUARD_S)


def run(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
    scenario: Callable[[Server], Awaitable[None]],
    tls: Pki | None = None,
) -> None:
    """Run ``scenario`` against a started server on a loop made by ``loop_factory``."""

    async def main() -> None:
        async with started_server(tls) as server:
            await asyncio.wait_for(scenario(server), GUARD_S)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


def address(server: Server) -> tuple[str, int]:
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return host, port


def read_answer(sock: socket.socket) -> bytes:
    """Read one whole ``ok`` answer (blocking, guarded by the socket's timeout)."""
    data = b""
    while not data.endswith(b"ok"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_every_waiting_connection_is_accepted_and_the_listener_goes_on() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
        accepted = accept_waiting(listener)
        assert len(accepted) == 5
        assert accept_waiting(listener) == []  # the backlog is empty now
        late = socket.create_connection(listener.getsockname())
        listener.settimeout(GUARD_S)
        connection, _ = listener.accept()  # the listener itself is as it was
        for sock in (*clients, *accepted, late, connection):
            sock.close()


@LOOPS
def test_connections_waiting_in_the_backlog_are_answered(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    async def scenario(server: Server) -> None:
        listening = address(server)
        # The loop cannot accept while this coroutine runs: these wait in the backlog.
        clients = [socket.create_connection(listening, timeout=GUARD_S) for _ in range(5)]
        for client in clients:
            client.sendall(REQUEST)
        admission = BacklogAdmission(server, asyncio.get_running_loop(), GUARD_S)
        assert await admission.admit() == 5
        with pytest.raises(ConnectionRefusedError):  # the listener is closed
            socket.create_connection(listening, timeout=GUARD_S)
        answers = await asyncio.gather(*(asyncio.to_thread(read_answer, c) for c in clients))
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers), answers
        for client in clients:
            client.close()

    run(loop_factory, scenario)


@LOOPS
def test_tls_connections_waiting_in_the_backlog_are_answered(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    client_tls = ssl.create_default_context(cafile=pki.ca)

    def exchange(sock: socket.socket) -> bytes:
        with client_tls.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(REQUEST)
            return read_answer(tls)

    async def scenario(server: Server) -> None:
        clients = [socket.create_connection(address(server), timeout=GUARD_S) for _ in range(3)]
        # The clients' handshakes start in threads; the server takes them from the backlog.
        answers = asyncio.gather(*(asyncio.to_thread(exchange, client) for client in clients))
        admission = BacklogAdmission(server, asyncio.get_running_loop(), GUARD_S)
        assert await admission.admit() == 3
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in await answers)

    run(loop_factory, scenario, pki)


@LOOPS
def test_the_signal_goes_on_once_the_backlog_is_taken(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    async def scenario(server: Server) -> None:
        handled: list[tuple[int, bool]] = []
        told = asyncio.Event()

        def uvicorn_handler(signum: int, _frame: FrameType | None) -> None:
            handled.append((signum, server.servers[0].is_serving()))
            told.set()

        loop = asyncio.get_running_loop()
        on_signal = BacklogAdmission(server, loop, GUARD_S).before(uvicorn_handler)
        on_signal(signal.SIGTERM, None)
        await told.wait()
        assert handled == [(signal.SIGTERM, False)]  # the listener was closed first
        told.clear()
        on_signal(signal.SIGINT, None)  # a second signal goes straight on
        await told.wait()
        assert [signum for signum, _ in handled] == [signal.SIGTERM, signal.SIGINT]

    run(loop_factory, scenario)


def test_the_server_is_found_behind_uvicorns_signal_handler() -> None:
    async def scenario(server: Server) -> None:
        with server.capture_signals():
            assert serving_server(signal.getsignal(signal.SIGTERM)) is server
        assert serving_server(answer_ok) is None

    run(asyncio.new_event_loop, scenario)
