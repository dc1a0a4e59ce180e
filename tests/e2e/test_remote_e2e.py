"""The remote backend against real upstream tensorgate processes on loopback: both wire
formats, a replica killed under load from 16 clients and brought back, and a slow
upstream meeting the caller's deadline."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.load import Load
from support.onnx_models import slow_model, write_model
from support.paths import DEMO_MODELS
from support.pki import make_pki
from support.scrape import parse_samples, sample
from support.server_process import ServerProcess
from support.workers import free_port

pytestmark = pytest.mark.e2e

CLIENTS = 16
GUARD_S = 60
ROWS = np.random.default_rng(5).uniform(0, 16, (3, 64)).astype(np.float32)
BODY = {
    "inputs": [
        {"name": "pixels", "shape": [3, 64], "datatype": "FP32", "data": ROWS.ravel().tolist()}
    ]
}


def upstream(root: Path, port: int) -> ServerProcess:
    """A tensorgate replica serving ``root`` on ``port`` with the tests' secret."""
    return ServerProcess(
        ["--models", str(root), "--port", str(port)], {"TENSORGATE_AUTH__SECRET": TEST_SECRET}
    )


def remote_model(root: Path, name: str, urls: list[str], **settings: str) -> None:
    """A model directory of ``root`` whose versions run on ``urls`` (no model file)."""
    (root / name / "1").mkdir(parents=True)
    lines = [
        "remote:",
        f"  urls: [{', '.join(urls)}]",
        "  model: " + settings.pop("model", "digits"),
        "  token_env: UPSTREAM_TOKEN",
        "  connect_timeout_ms: 300",
        "  health_interval_ms: 200",
        "  open_ms: 500",
        *(f"  {key}: {value}" for key, value in settings.items()),
    ]
    (root / name / "config.yaml").write_text("\n".join(lines) + "\n")


def gateway(root: Path) -> ServerProcess:
    """The gateway in front, with a token for the upstreams in its environment."""
    token = bearer(make_settings(root)).removeprefix("Bearer ")
    return ServerProcess(
        ["--models", str(root), "--log-level", "info"],
        {"TENSORGATE_AUTH__SECRET": TEST_SECRET, "UPSTREAM_TOKEN": token},
    )


@pytest.fixture
def upstream_repo(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    shutil.copytree(DEMO_MODELS / "digits", root / "digits")
    return root


def test_both_wire_formats_give_the_upstreams_answer(upstream_repo: Path, tmp_path: Path) -> None:
    port = free_port()
    front = tmp_path / "front"
    url = f"http://127.0.0.1:{port}"
    remote_model(front, "digits-binary", [url], wire="binary")
    remote_model(front, "digits-json", [url], wire="json")
    with upstream(upstream_repo, port) as replica, gateway(front) as server:
        headers = {"Authorization": bearer(make_settings(front))}
        direct = httpx.post(
            f"{replica.base_url}/v2/models/digits/infer", json=BODY, headers=headers
        )
        assert direct.status_code == 200
        for name in ("digits-binary", "digits-json"):
            answer = httpx.post(
                f"{server.base_url}/v2/models/{name}/infer", json=BODY, headers=headers
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["outputs"] == direct.json()["outputs"]
        metadata = httpx.get(f"{server.base_url}/v2/models/digits-json", headers=headers).json()
        assert metadata["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
        assert metadata["parameters"]["upstream"] == url


def served(replica: ServerProcess, token: str) -> float:
    """How many inference requests ``replica`` has answered with 200."""
    text = httpx.get(f"{replica.base_url}/metrics", headers={"Authorization": token}).text
    return sample(
        parse_samples(text),
        "tensorgate_inference_requests_total",
        model="digits",
        protocol="http",
        status="200",
        version="1",
    )


async def test_a_killed_replica_loses_only_its_in_flight_requests_and_rejoins(
    upstream_repo: Path, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    front = tmp_path / "front"
    remote_model(front, "digits", [f"http://127.0.0.1:{p}" for p in ports])
    token = bearer(make_settings(front))
    first, second = upstream(upstream_repo, ports[0]), upstream(upstream_repo, ports[1])
    with first, second, gateway(front) as server:
        url = f"{server.base_url}/v2/models/digits/infer"
        load = Load(url, {"Authorization": token}, BODY, clients=CLIENTS)
        load.start()
        await load.more(300)
        assert served(first, token) > 0
        assert served(second, token) > 0
        first.kill()
        killed_at = time.monotonic()
        await load.more(600)
        moved = [a for a in load.answers if a.status == 200 and a.received > killed_at]
        # Bring it back on the same port: the health checks let it rejoin.
        with upstream(upstream_repo, ports[0]) as again:
            await load.more(200)
            deadline = time.monotonic() + GUARD_S
            while await asyncio.to_thread(served, again, token) == 0:
                assert time.monotonic() < deadline, "the replica never rejoined"
                await load.more(50)
            await load.stop()
    failed = [
        (a.received - killed_at, a.status, str(a.document.get("error", "")))
        for a in load.answers
        if a.status != 200
    ]
    # Only batches on their way to the killed replica may fail, each with a clear 502/503.
    assert len(failed) <= CLIENTS, failed
    assert {status for _, status, _ in failed} <= {502, 503}
    assert all("127.0.0.1" in error for _, _, error in failed), failed
    assert all(0 <= after < 5 for after, _, _ in failed), failed
    assert len(moved) >= 500  # the survivor took the traffic


async def test_a_slow_upstream_is_a_504_at_the_callers_deadline(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    write_model(root, "slow", slow_model(400_000))
    port = free_port()
    front = tmp_path / "front"
    remote_model(front, "slow", [f"http://127.0.0.1:{port}"], model="slow")
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}
    with upstream(root, port), gateway(front) as server:
        headers = {"Authorization": bearer(make_settings(front)), "X-Request-Timeout-Ms": "200"}
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{server.base_url}/v2/models/slow/infer", json=body, headers=headers
            )
        took = time.monotonic() - started
    assert answer.status_code == 504
    assert "did not answer within the deadline" in answer.json()["error"]
    assert took < 5  # the deadline, not the model's second or the 30 s default


@pytest.fixture
def no_upstream() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_remote_model_without_any_upstream_is_unavailable_with_the_reason(
    tmp_path: Path, no_upstream: str
) -> None:
    front = tmp_path / "front"
    remote_model(front, "digits", [no_upstream])
    with gateway(front) as server:
        headers = {"Authorization": bearer(make_settings(front))}
        index = httpx.post(f"{server.base_url}/v2/repository/index", headers=headers).json()
    [entry] = index
    assert entry["state"] == "UNAVAILABLE"
    assert "no upstream answered the model's metadata" in entry["reason"]
    assert no_upstream in entry["reason"]


def test_a_remote_model_reaches_an_upstream_that_requires_mutual_tls(
    upstream_repo: Path, tmp_path: Path
) -> None:
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    env = {
        "TENSORGATE_AUTH__SECRET": TEST_SECRET,
        "TENSORGATE_TLS__CERTFILE": str(pki.server_cert),
        "TENSORGATE_TLS__KEYFILE": str(pki.server_key),
        "TENSORGATE_TLS__CLIENT_CA": str(pki.ca),
    }
    front = tmp_path / "front"
    url = f"https://127.0.0.1:{port}"
    tls = f"{{ca_file: {pki.ca}, cert_file: {pki.client_cert}, key_file: {pki.client_key}}}"
    remote_model(front, "digits", [url], tls=tls)
    remote_model(front, "digits-no-cert", [url], tls=f"{{ca_file: {pki.ca}}}")
    upstream_args = ["--models", str(upstream_repo), "--port", str(port)]
    with ServerProcess(upstream_args, env), gateway(front) as server:
        headers = {"Authorization": bearer(make_settings(front))}
        answer = httpx.post(f"{server.base_url}/v2/models/digits/infer", json=BODY, headers=headers)
        assert answer.status_code == 200, answer.text
        index = httpx.post(f"{server.base_url}/v2/repository/index", headers=headers).json()
    refused = next(entry for entry in index if entry["name"] == "digits-no-cert")
    assert refused["state"] == "UNAVAILABLE"  # no client certificate: the handshake fails
    assert url in refused["reason"]
