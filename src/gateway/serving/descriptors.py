"""The file-descriptor budget of a serving process: room for ``max_connections`` sockets."""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger("gateway.serving")

RESERVED_DESCRIPTORS = 256
"""Descriptors kept for everything but client sockets: models, logs, the listening
socket, the metrics files of ``--workers`` mode, the runtime's own."""


def raise_descriptor_limit(max_connections: int) -> None:
    """Raise the soft ``RLIMIT_NOFILE`` towards what ``max_connections`` needs (at most to
    the hard limit); worker processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered (with a warning) to what the descriptor limit allows, so
    that new connections are refused before descriptors run out."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - RESERVED_DESCRIPTORS >= max_connections:
        return max_connections
    cap = max(1, soft - RESERVED_DESCRIPTORS)
    logger.warning(
        "max_connections %d lowered to %d: the file-descriptor limit is %d",
        max_connections,
        cap,
        soft,
    )
    return cap
