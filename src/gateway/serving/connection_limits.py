"""Connection limits on uvicorn's httptools protocol: the fenced guard of the serving process.

uvicorn (0.54) bounds none of these on its httptools protocol: a connection may take
forever to send its headers or its body, a header may grow without end (the parser keeps
it all), and every accepted connection is served until descriptors run out (issue 10,
items 4 and 5). ``LimitedHttpToolsProtocol`` adds, per connection:

- a header timeout: from the moment the connection opens (or a request's first byte), the
  head must arrive within ``header_timeout_s``, else 408 and close;
- a body idle timeout: each piece of a body must follow the last within
  ``body_idle_timeout_s`` (a steady upload passes however slow); time the server itself
  is not reading does not count;
- a head size cap: 431 and close once a head passes ``max_header_bytes`` (bytes of an
  unfinished head are counted as they arrive, so the parser never holds more than the cap
  plus one read);
- a connection cap: past ``max_connections`` open connections a new one is answered 503
  and closed at once;
- close once a response is sent before its chunked request body was read: the server
  stops reading a body it refused (a 401 or 404 before the body; a 413 past the size cap
  closes through its ``Connection: close``);
- a graceful drain on shutdown: busy connections close after their answer; idle ones
  once ``shutdown_idle_close_s`` has passed with nothing arrived, never while their socket
  holds bytes not yet read (a request that came while the event loop was busy is read and
  answered first: closing over unread bytes would reset it).

Every cut is one warning line on the ``gateway.serving`` logger naming the peer address.
The keep-alive timeout and the shutdown grace period are uvicorn's own options
(``serving/options.py``).

Measured cost: within the spread of 4 alternating wrk rounds against the same tree
without it (digits, 32 connections); a request that arrives in one read arms no timer.

It relies on uvicorn's internals: the parser callbacks (``on_message_begin``,
``on_headers_complete``, ``on_body``, ``on_message_complete``), the parsed head (``url``,
``headers``), ``data_received``, ``on_response_complete``, ``shutdown``, and the attributes
``connections``, ``server_state.tasks`` (one per request being answered: handed to the
app in the scope as ``SERVER_REQUESTS``), ``scope``, ``cycle`` (``more_body``,
``response_started``, ``response_complete``, ``keep_alive``, ``disconnected``,
``message_event``), ``flow.read_paused``,
``transport``, ``client``, ``loop`` and ``pipeline``. tests/gateway/serving/
test_uvicorn_internals.py fails loudly when those move; ``http_protocol: h11`` (uvicorn's
own h11 protocol, with only the keep-alive timeout, h11's 400 for large heads and the
shutdown grace period) is the way out.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import sys
import termios
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.pipeline.endpoint import CONNECTION_SHARE, SERVER_REQUESTS
from gateway.serving.fair_reads import ConnectionShare, FairReads, fair_reads_of

logger = logging.getLogger("gateway.serving")

_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


@dataclass(frozen=True)
class ConnectionLimits:
    """The per-connection limits of one serving process (settings with the same names)."""

    header_timeout_s: float
    body_idle_timeout_s: float
    max_header_bytes: int
    max_connections: int
    shutdown_idle_close_s: float
    fair_reads_capacity: int | None = None
    """``fair_share.loop_concurrency``, or None: fair reads off (``serving.fair_reads``)."""
    fair_reads_view_s: float = 0.0
    """``fair_share.workers_view_ms`` in seconds: with several workers, how often each
    sends the others its load (0: shares per process)."""


def error_response(status: int, message: str) -> bytes:
    """A whole ``{"error": ...}`` response that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
        status,
        _REASONS[status],
        len(body),
    ) + (b"connection: close\r\n\r\n" + body)


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes that arrived on ``transport``'s socket and are not read yet (0 when unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        count = fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4))
    except OSError:  # closed meanwhile
        return 0
    return int.from_bytes(count, sys.byteorder)


def _is_chunked(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(
        name == b"transfer-encoding" and b"chunked" in value.lower() for name, value in headers
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with timeouts, a head size cap and a connection cap."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # One clock at a time: the head's, then the body's. It is armed only when a read
        # leaves a head or body unfinished, so a request that arrives whole in one read
        # (the common case) costs no timer at all.
        self._timer: asyncio.TimerHandle | None = None
        self._head_started = 0.0  # loop time the head (or the connection) began
        self._in_body = False
        self._body_seen = 0.0  # loop time of the last piece of body
        # Whether a head is being read, and the bytes of the whole reads after the one
        # it began in: what the parser may hold of it.
        self._head_open = False
        self._head_read = 0
        self._head_began_in_read = False
        self._read_bytes = 0  # length of the read being parsed
        self._refused = False
        self._draining = False
        capacity = limits.fair_reads_capacity
        self._fair = (
            None
            if capacity is None
            else fair_reads_of(self.server_state, capacity, self.loop, limits.fair_reads_view_s)
        )
        self._share = ConnectionShare()
        self._held = False

    # Connection events
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse the connection over the cap; otherwise start the header clock."""
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._cut(503, "too many open connections", "the server is at its connection limit")
            return
        self._head_started = self.loop.time()
        self._arm(self.limits.header_timeout_s, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clocks; a request in progress (or held) no longer counts."""
        self._disarm()
        if self._fair is not None:
            self._fair.release(self._share)
            self._fair.end(self._share)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, counting the bytes of an unfinished head."""
        if self._refused:
            return
        self._head_began_in_read = False
        self._read_bytes = len(data)
        counting = self._head_open
        super().data_received(data)
        if counting and self._head_open and not self._head_began_in_read:
            self._head_read += len(data)
            self._refused = self._refused or self._head_read > self.limits.max_header_bytes
        if self._refused and not self.transport.is_closing():
            self._cut(431, "request head too large", self._head_too_large())
        elif self._timer is None and not self._refused:
            self._time_what_is_unfinished()

    def _time_what_is_unfinished(self) -> None:
        """After a read: start the clock of a head or body it left unfinished."""
        if self._head_open:
            elapsed = self.loop.time() - self._head_started
            self._arm(self.limits.header_timeout_s - elapsed, self._header_timed_out)
        elif self._in_body:
            self._arm(self.limits.body_idle_timeout_s, self._body_stalled)

    # Parser callbacks
    def on_message_begin(self) -> None:
        """A request starts: count its head; its time runs from now, or from the
        connection's start for the first one."""
        super().on_message_begin()
        self._head_open = True
        self._head_read = 0
        self._head_began_in_read = True
        if self._timer is None:
            self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        """The head is in: start the request (431 if it is over the cap); its body is
        timed from now."""
        self._head_open = False
        self._disarm()
        cap = self.limits.max_header_bytes
        # A head begun and ended within one read under the cap is under it (the common
        # case, not worth summing); else its size as parsed: request target, and each
        # header line with ": " and CRLF.
        whole_in_one_read = self._head_began_in_read and self._read_bytes <= cap
        size = (
            0
            if whole_in_one_read
            else len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        )
        if self._refused or size > cap:
            self._refused = True
            return
        super().on_headers_complete()
        # The requests this process is answering, for the pipeline: a lone one need not
        # leave its batch open for company (api/pipeline/endpoint.py).
        self.scope[SERVER_REQUESTS] = self.server_state.tasks  # type: ignore[literal-required]
        if self._fair is not None:
            self.scope[CONNECTION_SHARE] = self._share  # type: ignore[literal-required]
            self._fair.begin(self._share)
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False
        self._in_body = True
        self._body_seen = self.loop.time()

    def on_body(self, body: bytes) -> None:
        """A piece of body: the idle gap starts again."""
        if self._refused:
            return
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        """The body is in: stop timing it."""
        if self._refused:
            return
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """After an answer sent before its request's chunked body was read, close: a
        chunked body need never end. The rest of a ``Content-Length`` body is read and
        dropped as uvicorn does (bounded: a length over the cap was answered 413 with
        ``Connection: close``), so that a client still sending it gets its answer."""
        cycle = self.cycle
        super().on_response_complete()
        if (
            cycle is not None
            and cycle.more_body
            and not self.transport.is_closing()
            and _is_chunked(cycle.scope["headers"])
        ):
            # A client's own business (say, a 401 to a chunked upload): not worth a warning.
            self._cut(None, "answered before the chunked request body was read", None, logging.INFO)
        fair = self._fair
        if fair is not None:
            fair.end(self._share)
            if (
                not self.transport.is_closing()
                and not self.pipeline
                and not self._draining
                and fair.holds_back(self._share)
            ):
                self._hold(fair)

    def _hold(self, fair: FairReads) -> None:
        """Leave the next request unread until the caller is back under its share; the
        keep-alive clock stops meanwhile (the client may have sent it already)."""
        self._held = True
        self._unset_keepalive_if_required()
        self.transport.pause_reading()
        fair.hold(self._share, self._resume_held)

    def _resume_held(self) -> None:
        if not self._held:
            return
        self._held = False
        if self.transport.is_closing():
            return
        self.transport.resume_reading()
        if self._idle():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def shutdown(self) -> None:
        """Close after the answer in progress, or, idle, once nothing has arrived for
        ``shutdown_idle_close_s`` (what the socket holds is read and answered first);
        uvicorn's grace period bounds the rest. A held connection is read again first:
        its request may be in the socket."""
        if self._fair is not None and self._fair.release(self._share) is not None:
            self._resume_held()
        self._draining = True
        if self._idle():
            self.loop.call_later(self.limits.shutdown_idle_close_s, self._close_if_idle)
        elif self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False

    # Clocks and cuts
    def _arm(self, delay_s: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(delay_s, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timed_out(self) -> None:
        self._timer = None
        if self._server_not_reading():  # the client cannot send: its time starts again
            self._head_started = self.loop.time()
            self._arm(self.limits.header_timeout_s, self._header_timed_out)
        elif self._request_in_flight():  # a pipelined head behind an answer in progress
            self._cut(None, "headers not received in time", None)
        else:
            self._cut(408, "headers not received in time", "request headers not received in time")

    def _body_stalled(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or not self._in_body:
            return
        now = self.loop.time()
        if self._server_not_reading():  # the client cannot send: its time starts again
            self._body_seen = now
        idle = now - self._body_seen
        if idle < self.limits.body_idle_timeout_s:  # a piece came since: wait out the rest
            self._arm(self.limits.body_idle_timeout_s - idle, self._body_stalled)
        elif cycle.response_started:  # answered already: the rest of its body stalled
            self._cut(None, "request body stalled", None)
        else:
            self._cut(408, "request body stalled", "request body stalled")

    def _server_not_reading(self) -> bool:
        """Time the server itself holds reading paused is not the client's fault."""
        return bool(self.flow is not None and self.flow.read_paused)

    def _request_in_flight(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _idle(self) -> bool:
        return not self._request_in_flight() and not self.pipeline and not self._head_open

    def _close_if_idle(self) -> None:
        if not self._idle() or self.transport.is_closing():
            return  # a request came: it closes after its answer (``keep_alive`` is off)
        if unread_bytes(self.transport):
            # Arrived while the loop was busy (a timer runs before the loop reads again):
            # read first; a request closes after its answer, anything else on the next look.
            self.loop.call_later(self.limits.shutdown_idle_close_s, self._close_if_idle)
            return
        self.transport.close()

    def _head_too_large(self) -> str:
        return f"request head larger than {self.limits.max_header_bytes} bytes"

    def _cut(
        self, status: int | None, reason: str, message: str | None, level: int = logging.WARNING
    ) -> None:
        """Log one line, answer ``status`` unless a response is under way, and close."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown peer"
        logger.log(level, "closing the connection from %s: %s", peer, reason)
        cycle = self.cycle
        answerable = cycle is None or cycle.response_complete or not cycle.response_started
        if status is not None and message is not None and answerable:
            self.transport.write(error_response(status, message))
        if cycle is not None and not cycle.response_complete:
            # The handler hears a disconnect and sends nothing more on this connection.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
