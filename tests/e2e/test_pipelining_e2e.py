"""HTTP/1.1 pipelining through a real server: answers come back complete and in order.

Several requests written in one go, good and bad, both inference routes and a FastAPI
route among them: each answer must be framed by its own Content-Length and arrive in the
order asked, whatever the HTTP implementation does with writes (coalescing or stock).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]

PIXELS = [0.0] * 20 + [16.0] * 24 + [0.0] * 20
GUARD_S = 20.0  # socket timeout: a hang guard only


def request(path: str, body: object | None, token: str, method: str = "POST") -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, Any]]]:
    """``count`` responses off the socket, each cut at its Content-Length."""
    buffer = b""
    answers: list[tuple[int, dict[str, Any]]] = []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(answers)} answers"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside a body"
            buffer += chunk
        body, buffer = buffer[:length], buffer[length:]
        answers.append((int(lines[0].split()[1]), json.loads(body)))
    return answers


@pytest.fixture(scope="module", params=["coalescing", "httptools"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    args = ["--models", str(DEMO_MODELS), "--log-level", "info", "--http", request.param]
    with ServerProcess(args, {"TENSORGATE_AUTH__SECRET": TEST_SECRET}) as process:
        yield process


def test_pipelined_requests_are_answered_in_order(server: ServerProcess) -> None:
    token = bearer(make_settings(DEMO_MODELS))
    protocol = {
        "id": "first",
        "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": PIXELS}],
    }
    wrong = {"inputs": [{"name": "pixels", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    batch = b"".join(
        [
            request("/v2/models/digits/infer", protocol, token),
            request("/v2/models/digits/infer", wrong, token),
            request("/models/digits/predict", {"inputs": {"pixels": [PIXELS]}}, token),
            request("/v2/models/digits/ready", None, token, method="GET"),
            request("/v2/models/nope/infer", protocol, token),
        ]
    )
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=GUARD_S) as sock:
        sock.sendall(batch)
        answers = read_responses(sock, 5)
    assert [status for status, _ in answers] == [200, 400, 200, 200, 404]
    assert answers[0][1]["id"] == "first"
    assert "dimension 1 is 3" in str(answers[1][1]["error"])
    assert set(answers[2][1]["outputs"]) == {"label", "probabilities"}
    assert answers[3][1] == {"name": "digits", "version": "1", "ready": True}
    assert "Request for unknown model: 'nope' is not found" in str(answers[4][1]["error"])
