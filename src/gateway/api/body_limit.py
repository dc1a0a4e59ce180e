"""ASGI middleware capping request bodies: 413 from Content-Length, or while reading."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.exception_handlers import error_response
from gateway.errors import PayloadTooLarge


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
        declared = _content_length(scope)
        if declared is not None:
            problem: str | None = None
            status = 413
            if not declared.isdigit():
                problem, status = "Content-Length header is not a non-negative integer", 400
            elif int(declared) > self.max_bytes:
                problem = self._too_large(f"Content-Length {int(declared)}")
            if problem is not None:
                await error_response(status, problem)(scope, receive, send)
                return
        await self.app(scope, self._counting(receive), send)

    def _too_large(self, what: str) -> str:
        return f"request body too large: {what} bytes exceeds the limit of {self.max_bytes} bytes"

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self._too_large(f"at least {received}"))
            return message

        return limited_receive


def _content_length(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return str(value.decode("latin-1"))
    return None
