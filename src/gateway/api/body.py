"""The request body: its cap (413 from Content-Length, while reading, or while
decompressing; then the connection closes), and a client leaving mid-body; for FastAPI and
the pipeline."""

from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.compression import decompress
from gateway.api.exception_handlers import gateway_error_response
from gateway.api.exchange import note_error
from gateway.errors import GatewayError, InvalidInput, PayloadTooLarge
from gateway.validation import describe_errors

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class ClientDisconnected(Exception):
    """The client left before its request body was complete: nobody is left to answer."""


def error_answer(exc: GatewayError) -> Response:
    """The answer to ``exc``; a 413 also closes the connection, so that the rest of a body
    over the cap is never read (a chunked one need not end)."""
    response = gateway_error_response(exc)
    if isinstance(exc, PayloadTooLarge):
        response.headers["connection"] = "close"
    return response


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` without buffering them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length first, then count the bytes actually received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_declared_length(scope, self.max_bytes)
            _refuse_encoded(scope)
        except GatewayError as exc:
            note_error(scope, exc.message)
            await error_answer(exc)(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise body_too_large(received, self.max_bytes)
            return message

        return limited_receive


def _refuse_encoded(scope: Scope) -> None:
    # Only the inference routes decompress (read_body); a compressed body elsewhere would
    # otherwise reach the route's JSON parser and be refused with a misleading message.
    # Without a body the header says nothing and is ignored, as Triton does (a client that
    # reuses the headers of a compressed infer call on a GET must not fail).
    encoding, has_body = None, False
    for key, value in scope["headers"]:
        if key == b"content-encoding":
            encoding = value
        elif key == b"transfer-encoding" or (key == b"content-length" and value.strip(b"0 ")):
            has_body = True
    if has_body and encoding is not None and encoding.strip().lower() not in (b"", b"identity"):
        raise InvalidInput(
            f"Content-Encoding {encoding.decode('latin-1')[:40]!r} is accepted on the "
            "inference routes only (infer, predict)"
        )


def check_declared_length(scope: Scope, max_bytes: int) -> None:
    """Raise ``PayloadTooLarge`` (413) for a ``Content-Length`` over ``max_bytes``, or
    ``InvalidInput`` (400) for a malformed one."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value.decode("latin-1")
            # ASCII digits only (str.isdigit takes superscripts, which int() refuses), and
            # too many of them is over any cap without converting them.
            if not _DIGITS.fullmatch(declared):
                raise InvalidInput("Content-Length header is not a non-negative integer")
            significant = declared.lstrip("0")
            if len(significant) > len(str(max_bytes)) or int(significant or "0") > max_bytes:
                raise PayloadTooLarge(_too_large(f"Content-Length {declared[:20]}", max_bytes))
            return


def body_too_large(received: int, max_bytes: int) -> PayloadTooLarge:
    """The error for a body found over the cap while reading it."""
    return PayloadTooLarge(_too_large(f"at least {received}", max_bytes))


def _too_large(what: str, max_bytes: int) -> str:
    return f"request body too large: {what} bytes exceeds the limit of {max_bytes} bytes"


async def read_body(receive: Receive, max_bytes: int, content_encoding: str | None = None) -> bytes:
    """The whole request body, decoded from ``content_encoding`` (gzip, deflate); raises
    ``PayloadTooLarge`` once more than ``max_bytes`` have arrived (a chunked body is not
    read further) or would come out of decompressing, ``ClientDisconnected`` if the client
    leaves first."""
    return decompress(await _read_raw(receive, max_bytes), content_encoding, max_bytes)


async def _read_raw(receive: Receive, max_bytes: int) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if len(body) > max_bytes:
        raise body_too_large(len(body), max_bytes)
    if not message.get("more_body", False):
        return body
    chunks = [body]
    received = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise body_too_large(received, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


_Body = TypeVar("_Body", bound=BaseModel)


async def json_body(request: Request, model: type[_Body]) -> _Body | None:
    """A route's optional JSON body as ``model``, whatever its Content-Type (tritonclient
    sends none); None when the body is empty."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return model.model_validate(json.loads(raw))
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise InvalidInput(describe_errors(exc.errors())) from None
        raise InvalidInput(f"the body is not JSON: {exc}") from None
