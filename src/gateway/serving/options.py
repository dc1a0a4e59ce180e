"""What ``tensorgate serve`` hands uvicorn, in both serving modes."""

from __future__ import annotations

from typing import Any

from gateway.log_safety import uvicorn_log_config
from gateway.settings import HttpProtocol, Settings


def http_implementation(protocol: HttpProtocol) -> Any:
    """uvicorn's ``http`` option for the ``http_protocol`` setting."""
    if protocol == "coalescing":
        from gateway.serving.coalescing import CoalescingHttpToolsProtocol

        return CoalescingHttpToolsProtocol
    return protocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Bind address, log level, lifespan, HTTP implementation and access log."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "lifespan": "on",
        "http": http_implementation(settings.http_protocol),
        # uvicorn formats an access-log line's fields (client, quoted path) for every
        # response before its logger drops them; below info nobody would see them.
        "access_log": settings.log_level in ("info", "debug"),
        # Control characters a client sent are escaped in every line (docs/authentication.md).
        "log_config": uvicorn_log_config(settings.log_level, process_ids=settings.workers > 1),
    }
