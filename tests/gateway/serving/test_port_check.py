"""The gRPC port probe: a port held by anyone (with SO_REUSEPORT too) stops the start."""

from __future__ import annotations

import socket

import pytest

from gateway.serving.port_check import PortInUse, check_port_free
from support.workers import free_port


def test_a_free_port_passes() -> None:
    check_port_free("127.0.0.1", free_port(), "grpc.port")


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_held_port_is_refused_naming_the_setting(reuse_port: bool) -> None:
    with socket.socket() as held:
        if reuse_port:  # as every worker of another server holds it
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(PortInUse, match=rf"127\.0\.0\.1:{port} \(grpc\.port\)"):
            check_port_free("127.0.0.1", port, "grpc.port")
