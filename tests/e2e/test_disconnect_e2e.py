"""A client that hangs up while queued, against the real server: its request never runs.

uvicorn does not cancel the handler of a client that went away; the inference path
watches ``receive()`` itself (``DisconnectWatch``). Only a real uvicorn connection shows
that the watch hears a real socket closing.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.onnx_models import slow_model, write_model
from support.server_process import ServerProcess

ITERATIONS = 400_000  # about a second per call on a 2-core CI machine
GUARD_S = 60  # hang guard only

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("models")
    write_model(root, "slow", slow_model(ITERATIONS))
    (root / "slow" / "config.yaml").write_text("instances: 1\n")
    env = {"TENSORGATE_AUTH__SECRET": TEST_SECRET}
    with ServerProcess(["--models", str(root)], env) as process:
        yield process


def request_body(value: float) -> bytes:
    return b'{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[%r]}]}' % value


async def metric(http: httpx.AsyncClient, series: str) -> float:
    text = (await http.get("/metrics")).text
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def until(http: httpx.AsyncClient, series: str, value: float) -> None:
    """Ask /metrics until ``series`` reads ``value``: the server's own view of its queue,
    each reading a full HTTP round trip."""
    while await metric(http, series) != value:
        pass


def hang_up_after_sending(base_url: str, token: str, body: bytes) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: %s\r\nContent-Length: %d\r\n\r\n%s" % (token.encode(), len(body), body)
    )
    return sock


async def test_a_queued_request_whose_client_hangs_up_is_never_computed(
    server: ServerProcess,
) -> None:
    token = bearer(make_settings(Path(".")))
    labels = '{model="slow",version="1"}'
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": token}, timeout=GUARD_S
    ) as http:
        first = asyncio.ensure_future(http.post("/v2/models/slow/infer", content=request_body(1)))
        await asyncio.wait_for(until(http, f"tensorgate_batch_size_count{labels}", 1), GUARD_S)

        quitter = hang_up_after_sending(server.base_url, token, request_body(2))
        await asyncio.wait_for(until(http, f"tensorgate_queue_depth{labels}", 1), GUARD_S)
        quitter.close()
        gone = (
            'tensorgate_inference_requests_total{model="slow",protocol="http",'
            'status="499",version="1"}'
        )
        await asyncio.wait_for(until(http, gone, 1), GUARD_S)

        answer = await asyncio.wait_for(first, GUARD_S)
        assert answer.status_code == 200
        assert answer.json()["outputs"][0]["data"] == [1 + ITERATIONS]
        # Another request after it: had the quitter stayed queued, it would run first or
        # beside this one, and the row count would show it.
        last = await http.post("/v2/models/slow/infer", content=request_body(3))
        assert last.json()["outputs"][0]["data"] == [3 + ITERATIONS]
        assert await metric(http, f"tensorgate_batch_size_sum{labels}") == 2
        assert await metric(http, f"tensorgate_batch_size_count{labels}") == 2
