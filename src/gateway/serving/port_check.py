"""A port checked free before the serving processes start.

With several workers every worker binds the gRPC port with ``SO_REUSEPORT``, which would
also let a second server on the machine share the port without an error (clients reaching
either). A probe bound without that option fails on a port anyone holds, so the second
server stops at once with a message instead.
"""

from __future__ import annotations

import socket


class PortInUse(Exception):
    """The port cannot be bound; the message says which and why."""


def check_port_free(host: str, port: int, setting: str) -> None:
    """Raise ``PortInUse`` unless ``host``:``port`` can be bound now (``setting`` names it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {host}:{port} ({setting}): {exc.strerror}; another server "
                "may hold it (set another port, or 0 to turn the service off)"
            ) from None
