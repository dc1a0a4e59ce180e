"""A client cannot write forged lines into the log of a real server (issue 10, item 9)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

FORGED = "2026-01-01 00:00:00,000 CRITICAL gateway: FORGED"
SECRET = "SECRETSIGNATURE"
GUARD_S = 30.0


def exchange(base_url: str, head: str) -> bytes:
    """Send one raw request head (exactly as written, control escapes included)."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=GUARD_S) as sock:
        sock.sendall(head.encode("latin-1"))
        return sock.recv(65536)


@pytest.mark.e2e
@pytest.mark.hostile
def test_a_client_cannot_forge_log_lines_or_read_tokens_into_the_log(tmp_path: Path) -> None:
    forged = FORGED.replace(" ", "%20")
    env = {"TENSORGATE_AUTH__STATE_DIR": str(tmp_path / "state")}
    args = ["--models", str(DEMO_MODELS), "--log-level", "info"]
    with ServerProcess(args, env) as server:
        token = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.{SECRET}"
        heads = [  # no valid token: refused and logged by the pipeline
            f"POST /v2/models/mlp%0A{forged}/infer HTTP/1.1\r\nHost: t\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            # uvicorn's access log and FastAPI's 404
            f"GET /v2/models/x%0D%0A{forged}%1B[2J HTTP/1.1\r\nHost: t\r\n"
            "Connection: close\r\n\r\n",
        ]
        for head in heads:
            assert exchange(server.base_url, head).startswith(b"HTTP/1.1 ")
        exchange(server.base_url, "GET /v2/health/live?marker HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for(re.compile(r"/v2/health/live\?marker"), timeout=GUARD_S)
        server.stop()
    log = "".join(server.lines)
    assert "FORGED" in log  # the requests were logged, escaped
    assert not [line for line in server.lines if line.startswith(FORGED)]
    assert "\x1b" not in log
    assert SECRET not in log
