"""The access log: one line per request on standard output, JSON by default (one object
per line), or a readable line when the output is a terminal.

It replaces uvicorn's access log and is written without the ``logging`` machinery: a line
is built with orjson (which escapes every control character a client may have sent) and
appended to a buffer that is written out once per event-loop turn, in writes of at most
``PIPE_BUF`` bytes cut at line ends, so that the lines of several worker processes never
interleave. Formatting and writing a line through ``logging`` cost about as much as the
rest of an inference request (docs/operations.md has the figures).
"""

from __future__ import annotations

import asyncio
import os
import select
import sys
import time
from collections.abc import Callable
from typing import Literal

import orjson
from starlette.types import Scope

from gateway.api.exchange import Exchange
from gateway.log_safety import escape_controls

AccessLogFormat = Literal["json", "text"]
Write = Callable[[bytes], None]

MAX_PATH_CHARS = 2048
"""A longer path (with its query string) is cut in the log: a request head may hold up
to max_header_bytes."""
MAX_SUBJECT_CHARS = 256
_FLUSH_BYTES = 64 * 1024
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)


def write_stdout(data: bytes) -> None:
    """Write all of ``data`` to file descriptor 1."""
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def chosen_format(setting: Literal["auto", "json", "text"]) -> AccessLogFormat:
    """``auto``: text on a terminal, JSON otherwise."""
    if setting == "auto":
        return "text" if sys.stdout.isatty() else "json"
    return setting


class _Clock:
    """UTC timestamps with milliseconds; the seconds part is formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def stamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._text}.{int((now - second) * 1000):03d}Z"


class AccessLog:
    """Formats one line per request and writes them out in batches."""

    def __init__(self, fmt: AccessLogFormat, write: Write = write_stdout) -> None:
        self._format = self._json if fmt == "json" else self._text
        self._write = write
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._clock = _Clock()

    def record(self, scope: Scope, exchange: Exchange, seconds: float) -> None:
        """Add the line of one answered request; written by the end of the loop turn."""
        line = self._format(scope, exchange, seconds)
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
                self._scheduled = True
            except RuntimeError:  # no event loop (a test calling in directly)
                self.flush()

    def flush(self) -> None:
        """Write every buffered line, in pieces of at most PIPE_BUF cut at line ends."""
        self._scheduled = False
        lines, size, self._lines, self._size = self._lines, self._size, [], 0
        if size <= _PIPE_BUF:  # the usual turn's lines: one piece
            if lines:
                self._write(b"".join(lines))
            return
        piece: list[bytes] = []
        size = 0
        for line in lines:
            if piece and size + len(line) > _PIPE_BUF:
                self._write(b"".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += len(line)
        if piece:
            self._write(b"".join(piece))

    def _json(self, scope: Scope, exchange: Exchange, seconds: float) -> bytes:
        trace = exchange.trace
        queue_s = trace.queue_s if trace is not None else None
        line = {
            "time": self._clock.stamp(time.time()),
            "request_id": exchange.request_id.decode(),
            "method": scope["method"],
            "path": _target(scope),
            "status": exchange.status,
            "latency_ms": round(seconds * 1000, 3),
            "client": _client(scope),
            "subject": _subject(exchange),
            "model": exchange.model,
            "version": exchange.version,
            "queue_ms": None if queue_s is None else round(queue_s * 1000, 3),
            "batch_size": trace.batch_rows if trace is not None else None,
            "traceparent": exchange.traceparent.decode() if exchange.traceparent else None,
            "error": exchange.error,
        }
        try:
            return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:  # a lone surrogate (a token's subject may hold one)
            safe = {k: _utf8(v) if isinstance(v, str) else v for k, v in line.items()}
            return orjson.dumps(safe, option=orjson.OPT_APPEND_NEWLINE)

    def _text(self, scope: Scope, exchange: Exchange, seconds: float) -> bytes:
        parts = [
            self._clock.stamp(time.time()),
            _client(scope) or "-",
            scope["method"],
            _target(scope),
            str(exchange.status),
            f"{seconds * 1000:.2f}ms",
            f"id={exchange.request_id.decode()}",
        ]
        if exchange.subject is not None:
            parts.append(f"sub={_subject(exchange)}")
        if exchange.model is not None:
            parts.append(f"model={exchange.model} version={exchange.version or '-'}")
        trace = exchange.trace
        if trace is not None and trace.queue_s is not None:
            parts.append(f"queue={trace.queue_s * 1000:.2f}ms batch={trace.batch_rows}")
        if exchange.traceparent:
            parts.append(f"traceparent={exchange.traceparent.decode()}")
        if exchange.error:
            parts.append(f"error={exchange.error!r}")
        return (escape_controls(" ".join(parts)) + "\n").encode("utf-8", "backslashreplace")


def _utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _target(scope: Scope) -> str:
    """The path and query string, cut to MAX_PATH_CHARS."""
    target: str = scope["path"]
    query = scope.get("query_string")
    if query:
        target = f"{target}?{query.decode('latin-1')}"
    return target[:MAX_PATH_CHARS]


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


def _subject(exchange: Exchange) -> str | None:
    subject = exchange.subject
    return subject[:MAX_SUBJECT_CHARS] if subject is not None else None
