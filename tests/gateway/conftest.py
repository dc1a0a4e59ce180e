"""Fixtures for every in-process test of the gateway."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_default_grpc_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tensorgate serve`` run in process (its server replaced) still checks that its gRPC
    port is free: the default, 8001, is one for the whole machine, and another server or
    test may hold it. A test that wants a port names it with ``--grpc-port``."""
    monkeypatch.setenv("TENSORGATE_GRPC__PORT", "0")
