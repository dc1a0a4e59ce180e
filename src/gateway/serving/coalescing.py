"""uvicorn's httptools protocol, sending each response in one write instead of two: the
fenced speed trick of the serving process (``http_protocol: coalescing``, the default).

uvicorn writes a response's head when the app sends ``http.response.start`` and its body
on ``http.response.body``: two socket writes, two TCP segments (uvloop disables Nagle),
and a client woken twice. For the small JSON answers of inference that second system call
was the largest single cost of a request on the event loop (15-35 us, docs/batching.md).
The transport handed to uvicorn here holds a first write (the head) until the next one
(the body) and sends both in one system call, at once; a write nothing follows (a head
without a body, the last chunk) leaves at the end of the loop turn. Measured with ``make
bench-ab`` (one process, auth on, medians of 5 alternating rounds,
docs/benchmarks-ab.md): against stock
``httptools``, +24% req/s for ``mlp`` and +11% for ``digits`` at 64 connections (8,543 vs
6,888; 9,875 vs 8,859); at one connection the two are within the rounds' spread.

It relies on uvicorn's internals: ``HttpToolsProtocol.connection_made(transport)`` keeps
the transport it is given and uses only the ``asyncio.Transport`` methods wrapped below;
the protocol has a ``loop`` attribute. It is built on ``LimitedHttpToolsProtocol``
(``serving/connection_limits.py``: the connection limits), which leans on more of
uvicorn's protocol and lists what in its docstring. pyproject.toml pins uvicorn below the next minor
release not yet tested, tests/gateway/serving/test_uvicorn_internals.py fails loudly when
those internals move, and ``http_protocol: httptools`` (or ``h11``) turns this off.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.serving.connection_limits import LimitedHttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes within one loop turn leave as a single write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold a first write (a response's head) until the next one (its body), then send
        both at once; a write nothing follows leaves at the end of the loop turn.

        Sending on the body, rather than at the end of the turn, keeps the work that follows
        an answer in the same turn (metrics, the access log) off the client's wait."""
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse a mutable buffer once this returns
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        """Queue every buffer of ``list_of_data``."""
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what was queued, as one write."""
        pending, self._pending = self._pending, None
        if not pending or self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Close at once; queued data is dropped, as by the transport itself."""
        self._pending = None
        self._transport.abort()

    def write_eof(self) -> None:
        """Send what is queued, then half-close."""
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """As the wrapped transport."""
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        """As the wrapped transport."""
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """As the wrapped transport (socket, peername, sslcontext...)."""
        return self._transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        """As the wrapped transport."""
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        """As the wrapped transport."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """As the wrapped transport."""
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """As the wrapped transport."""
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        """Bytes buffered by the wrapped transport plus those queued here."""
        queued = sum(len(data) for data in self._pending or ())
        return self._transport.get_write_buffer_size() + queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """As the wrapped transport."""
        limits: tuple[int, int] = self._transport.get_write_buffer_limits()
        return limits

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """As the wrapped transport."""
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """As the wrapped transport."""
        return self._transport.get_protocol()


class CoalescingHttpToolsProtocol(LimitedHttpToolsProtocol):
    """uvicorn's httptools protocol, with the connection limits, over a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Hand uvicorn the coalescing wrapper instead of the socket transport."""
        super().connection_made(CoalescingTransport(transport, self.loop))
