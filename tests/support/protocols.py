"""What the serving protocols' tests share: connection limits, a request, an app."""

from __future__ import annotations

from typing import Any

from gateway.serving.connection_limits import ConnectionLimits

REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def protocol_limits(shutdown_idle_close_s: float = 0.05) -> ConnectionLimits:
    """Generous limits (64 connections), with ``shutdown_idle_close_s``."""
    return ConnectionLimits(
        header_timeout_s=10,
        body_idle_timeout_s=10,
        max_header_bytes=65536,
        max_connections=64,
        shutdown_idle_close_s=shutdown_idle_close_s,
    )


async def answer_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every request 200 ``ok``."""
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})
