"""One HTTP request's record, filled in while it is answered: what the access log writes.

Every request gets a request id: the client's ``X-Request-ID`` when it is short and plain
(at most 128 characters of letters, digits and ``. _ : / + = @ -``), a fresh one
otherwise; it is echoed in the response's ``X-Request-ID`` header. A W3C ``traceparent``
header in the standard form is carried into the log line.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from typing import Any

from starlette.types import Message, Scope, Send

from gateway.batching.observer import BatchTrace

REQUEST_ID_HEADER = b"x-request-id"
_TRACEPARENT_HEADER = b"traceparent"
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_KEY = "tensorgate.exchange"
MAX_ERROR_CHARS = 300
"""An error message is cut to this length in the log (it may quote what the client sent)."""


class Exchange:
    """What one request came to. ``status`` is 0 until an answer starts (or, for a request
    that got none, the status recorded for it, such as 499)."""

    __slots__ = (
        "error",
        "model",
        "request_bytes",
        "request_id",
        "response_bytes",
        "status",
        "subject",
        "trace",
        "traceparent",
        "version",
    )

    def __init__(
        self, request_id: bytes, traceparent: bytes | None, request_bytes: int = 0
    ) -> None:
        self.request_id = request_id
        self.traceparent = traceparent
        self.request_bytes = request_bytes
        """The declared ``Content-Length`` (0 without one)."""
        self.response_bytes = 0
        self.status = 0
        self.subject: str | None = None
        self.model: str | None = None
        self.version: str | None = None
        self.trace: BatchTrace | None = None
        self.error: str | None = None

    def failed(self, message: str) -> None:
        """Remember why the request was refused or failed (cut to ``MAX_ERROR_CHARS``)."""
        self.error = message[:MAX_ERROR_CHARS]

    def wrap(self, send: Send) -> Send:
        """``send`` that records the status and adds the ``X-Request-ID`` header."""
        header = (REQUEST_ID_HEADER, self.request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.response_bytes += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                self.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        return send_with_id


_PROCESS_PREFIX = os.urandom(4).hex()
_SEQUENCE = itertools.count()


def new_request_id() -> bytes:
    """A fresh request id, 16 hexadecimal digits: 8 random ones per process (workers are
    spawned, so each draws its own), then a counter; unique without a system call."""
    return f"{_PROCESS_PREFIX}{next(_SEQUENCE) & 0xFFFFFFFF:08x}".encode()


def begin_exchange(scope: Scope) -> Exchange:
    """The record of the request in ``scope``, kept in the scope for the handlers."""
    request_id: bytes | None = None
    traceparent: bytes | None = None
    length = 0
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() and len(value) < 19 else 0
        elif name == REQUEST_ID_HEADER:
            request_id = value if _REQUEST_ID.fullmatch(value) else None
        elif name == _TRACEPARENT_HEADER:
            traceparent = value if _TRACEPARENT.fullmatch(value) else None
    exchange = Exchange(request_id or new_request_id(), traceparent, length)
    scope[_KEY] = exchange
    return exchange


def exchange_of(scope: Mapping[str, Any]) -> Exchange | None:
    """The record ``begin_exchange`` put in ``scope``, if any."""
    found: Exchange | None = scope.get(_KEY)
    return found


def note_error(scope: Mapping[str, Any], message: str) -> None:
    """Record the message of an error answer to the request in ``scope`` for the access
    log (the inference pipeline records its own in its exchange)."""
    exchange = exchange_of(scope)
    if exchange is not None:
        exchange.failed(message)
