"""The listen backlog, answered at shutdown: the fenced guard of lossless shutdown.

When uvicorn shuts down it closes its listening sockets first. A connection the kernel has
accepted that the server has not yet taken (it waits in the socket's listen backlog while
the event loop is busy, say decoding a large body) is then reset, although its client may
have sent a whole request (issue 20: 19 of 22 requests reset). ``BacklogAdmission`` runs
between the shutdown signal and uvicorn's shutdown: it takes every connection waiting in
the backlog (``accept`` until the backlog is empty), closes the listeners, hands each
connection to uvicorn's own protocol as a connection it accepted itself, and only then
passes the signal on. Those connections are then drained like any other
(``serving/connection_limits.py``): what they sent is read and answered.

It relies on uvicorn's internals: the handler uvicorn installs for SIGTERM and SIGINT
is its ``Server``'s bound ``handle_exit`` (``Server.capture_signals``), and the server's
``servers`` (asyncio servers, with ``sockets`` and ``close``), ``config`` (``ssl``,
``http_protocol_class``, built with the keyword arguments ``config``, ``server_state``,
``app_state`` and ``_loop``), ``server_state`` and ``lifespan.state``.
tests/gateway/serving/test_uvicorn_internals.py fails loudly when those move;
``http_protocol: h11`` leaves the backlog alone (``serving/draining.py``), and without a
uvicorn ``Server`` behind the handler the signal goes on unchanged: what uvicorn alone
does (the backlog is reset). Costs nothing before the shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from types import FrameType

from uvicorn.server import Server

logger = logging.getLogger("gateway.serving")

SignalHandler = Callable[[int, FrameType | None], object]


def serving_server(handler: object) -> Server | None:
    """The uvicorn ``Server`` whose ``handle_exit`` ``handler`` is, if it is one."""
    server = getattr(handler, "__self__", None)
    return server if isinstance(server, Server) else None


def accept_waiting(listener: socket.socket) -> list[socket.socket]:
    """Every connection waiting in ``listener``'s backlog, accepted on a duplicate of its
    descriptor (the event loop's own stays as it is) until the backlog is empty."""
    accepted: list[socket.socket] = []
    with socket.socket(fileno=os.dup(listener.fileno())) as duplicate:
        duplicate.setblocking(False)
        while True:
            try:
                connection, _ = duplicate.accept()
            except (BlockingIOError, InterruptedError):
                return accepted
            except ConnectionAbortedError:  # reset by its client while it waited
                continue
            except OSError as exc:  # out of descriptors: the rest stay where they are
                logger.warning("could not take every connection from the backlog: %s", exc)
                return accepted
            accepted.append(connection)


class BacklogAdmission:
    """Takes ``server``'s listen backlog once, when the shutdown starts; connections that
    are not set up within ``wait_s`` (a TLS handshake) go on without holding it up."""

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop, wait_s: float) -> None:
        self._server = server
        self._loop = loop
        self._wait_s = wait_s
        self._admitting: asyncio.Task[None] | None = None
        self._connecting: set[asyncio.Task[object]] = set()
        self._passed_on = False

    def before(self, handler: SignalHandler) -> SignalHandler:
        """A signal handler that admits the backlog, then calls ``handler``; from the
        second signal on, ``handler`` at once (a second Ctrl+C still forces the exit)."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            try:
                self._loop.call_soon_threadsafe(self._begin, handler, signum)
            except RuntimeError:  # the loop is closed: nothing left to admit
                handler(signum, None)

        return on_signal

    def _begin(self, handler: SignalHandler, signum: int) -> None:
        if self._admitting is None:
            self._admitting = self._loop.create_task(self._admit_then(handler, signum))
        else:
            self._passed_on = True
            handler(signum, None)

    async def _admit_then(self, handler: SignalHandler, signum: int) -> None:
        try:
            await self.admit()
        except Exception:  # the shutdown goes on regardless
            logger.exception("could not take the listen backlog")
        if not self._passed_on:
            handler(signum, None)

    async def admit(self) -> int:
        """Accept what waits in every listener's backlog, close the listeners, and serve
        those connections as uvicorn's own; returns how many there were."""
        accepted: list[socket.socket] = []
        for listener in getattr(self._server, "servers", ()):
            for sock in listener.sockets:
                accepted += accept_waiting(sock)
            listener.close()  # no new connection from now on; a second close is a no-op
        if not accepted:
            return 0
        logger.info("shutting down: %d connections taken from the backlog", len(accepted))
        ssl = self._server.config.ssl
        for connection in accepted:
            task = self._loop.create_task(
                self._loop.connect_accepted_socket(self._protocol, connection, ssl=ssl)
            )
            self._connecting.add(task)
            task.add_done_callback(self._settled)
        await asyncio.wait(set(self._connecting), timeout=self._wait_s)
        return len(accepted)

    def _settled(self, task: asyncio.Task[object]) -> None:
        self._connecting.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Its client's doing (a failed TLS handshake, a reset): nothing to answer.
            logger.info("a connection taken from the backlog failed: %r", exc)

    def _protocol(self) -> asyncio.Protocol:
        server = self._server
        protocol: asyncio.Protocol = server.config.http_protocol_class(  # type: ignore[call-arg]
            config=server.config,
            server_state=server.server_state,
            app_state=server.lifespan.state,
            _loop=self._loop,
        )
        return protocol
