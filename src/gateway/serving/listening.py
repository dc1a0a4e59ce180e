"""Serving on a socket whose port is known: what ``tensorgate serve`` announces (its start
line, the dev banner) names the port actually bound, ``--port 0`` included.

uvicorn's ``run`` binds the socket itself and tells nobody the port, so both modes start
uvicorn as ``uvicorn.run`` does and read the port off the listening socket:

- one process: a ``uvicorn.Server`` whose ``startup`` (models loaded, then the socket
  bound and listening) ends by calling ``on_listening``; before that, a connection is
  refused, as with ``uvicorn.run``;
- ``--workers N``: the parent binds the socket (``Config.bind_socket``), calls
  ``on_listening`` and hands the socket to uvicorn's ``Multiprocess`` supervisor; the
  workers listen on it once their apps have started.

It relies on ``Server.startup`` setting ``Server.servers`` and on
``Multiprocess(config, sockets)`` (uvicorn 0.51 and later, pinned in pyproject.toml);
tests/gateway/serving/test_uvicorn_internals.py fails when either moves.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

OnListening = Callable[[int], None]
"""Told the port the server listens on, once it does."""


def bound_port(sockets: Sequence[socket.socket]) -> int:
    """The port of the first listening socket (the others, for a name that resolves to
    several addresses, were bound by the same request)."""
    return int(sockets[0].getsockname()[1])


class ListeningServer(uvicorn.Server):
    """uvicorn's server that calls ``on_listening`` with its port once it listens."""

    def __init__(self, config: uvicorn.Config, on_listening: OnListening) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up (the lifespan, then the listening socket), then the port."""
        await super().startup(sockets=sockets)
        if self.started:
            self._on_listening(bound_port([s for server in self.servers for s in server.sockets]))


def serve_one(app: ASGIApp, options: dict[str, Any], on_listening: OnListening) -> None:
    """Serve ``app`` in this process with uvicorn's ``options`` until told to stop; exit
    with ``STARTUP_FAILURE`` when the server never started (as ``uvicorn.run`` does)."""
    server = ListeningServer(uvicorn.Config(app, **options), on_listening)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT once it is done
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve_workers(
    factory: str, workers: int, options: dict[str, Any], on_listening: OnListening
) -> None:
    """Bind the socket here, announce its port, and supervise ``workers`` processes that
    serve the app ``factory`` (an import string) on it."""
    config = uvicorn.Config(factory, factory=True, workers=workers, **options)
    sock = config.bind_socket()  # logs uvicorn's "running on" line; exits when it fails
    on_listening(bound_port([sock]))
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
