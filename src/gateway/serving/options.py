"""What ``tensorgate serve`` hands uvicorn, in both serving modes."""

from __future__ import annotations

import functools
import ssl
from typing import Any

from gateway.log_safety import uvicorn_log_config
from gateway.serving.cpus import process_count
from gateway.serving.descriptors import connection_cap
from gateway.settings import Settings


def http_implementation(settings: Settings) -> Any:
    """uvicorn's ``http`` option for the ``http_protocol`` setting: a protocol factory
    carrying the connection limits, or uvicorn's own ``h11``."""
    if settings.http_protocol == "h11":
        return "h11"
    from gateway.serving.connection_limits import ConnectionLimits, LimitedHttpToolsProtocol

    protocol: type[LimitedHttpToolsProtocol] = LimitedHttpToolsProtocol
    if settings.http_protocol == "coalescing":
        from gateway.serving.coalescing import CoalescingHttpToolsProtocol

        protocol = CoalescingHttpToolsProtocol
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_idle_timeout_s=settings.body_idle_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=connection_cap(settings.max_connections),
        shutdown_idle_close_s=settings.shutdown_idle_close_s,
        fair_reads_capacity=fair_reads_capacity(settings),
        fair_reads_view_s=settings.fair_share.workers_view_ms / 1000,
    )
    # A partial of a module-level class pickles: --workers sends it to each process.
    return functools.partial(protocol, limits=limits)


LOOP_CONCURRENCY_PER_WORKER = 4
"""``fair_share.loop_concurrency: auto``: requests in progress per worker process beyond
which a contended server holds back callers over their share (measured, one worker,
a polite caller at 4 connections beside a flood at 256: 38-46% of its goodput alone at 8,
50-58% at 4; two workers at 8 in all: 43-73%, at 4 in all: 50-53% but the flood's
goodput a quarter lower)."""


def fair_reads_capacity(settings: Settings) -> int | None:
    """The server's ``loop_concurrency`` (``auto``: ``LOOP_CONCURRENCY_PER_WORKER`` per
    worker process), or None when fair share is off."""
    fair = settings.fair_share
    if not fair.enabled:
        return None
    if fair.loop_concurrency != "auto":
        return fair.loop_concurrency
    return LOOP_CONCURRENCY_PER_WORKER * process_count(settings.workers)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Bind address, log level, lifespan, HTTP implementation, timeouts, TLS."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "lifespan": "on",
        "http": http_implementation(settings),
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        # tensorgate writes its own access log (gateway.api.access_log), uvicorn none.
        "access_log": False,
        # Control characters a client sent are escaped in every line (docs/authentication.md).
        # ``auto`` is resolved before serving; until then, name processes to be safe.
        "log_config": uvicorn_log_config(settings.log_level, process_ids=settings.workers != 1),
    }
    tls = settings.tls
    if tls.enabled:
        options["ssl_certfile"] = str(tls.certfile)
        options["ssl_keyfile"] = str(tls.keyfile)
        if tls.keyfile_password is not None:
            options["ssl_keyfile_password"] = tls.keyfile_password.get_secret_value()
        if tls.client_ca is not None:
            options["ssl_ca_certs"] = str(tls.client_ca)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    if settings.http_protocol == "h11":
        # h11 has neither the protocol limits nor 431: its own head cap answers 400, and
        # uvicorn's concurrency limit answers 503 once the head is in.
        options["h11_max_incomplete_event_size"] = settings.max_header_bytes
        options["limit_concurrency"] = settings.max_connections
    return options
