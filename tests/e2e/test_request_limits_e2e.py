"""Through a real server: the envelope bomb, the row bomb, odd versions, lone surrogates."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    env = {"TENSORGATE_AUTH__SECRET": TEST_SECRET}
    with ServerProcess(["--models", str(DEMO_MODELS), "--log-level", "info"], env) as process:
        yield process


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": bearer(make_settings(DEMO_MODELS))},
        timeout=30,
    ) as client:
        yield client


def test_an_envelope_bomb_is_refused_by_count(server: ServerProcess, http: httpx.Client) -> None:
    # Fails before: 400 after 3.5 s and +860 MB of peak RSS (one Pydantic error per field).
    body = b'{"inputs":[' + b",".join([b"{}"] * 200_000) + b"]}"
    peak_before = server.peak_rss_bytes()
    response = http.post("/v2/models/mlp/infer", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "request has 200000 inputs; the model has 1 (input), so a request names at most 1"
    )
    # Memory, not time: the parsed body is about 20 MB, the old error list hundreds.
    assert server.peak_rss_bytes() - peak_before < 100 * 2**20


def test_more_rows_than_the_queue_holds_is_413_without_retry_after(http: httpx.Client) -> None:
    # Fails before: 503 + Retry-After: 1 on an idle server, forever.
    rows = 128 * 64 + 1  # mlp: default max_queue_size x max_batch_size, plus one
    body = (
        b'{"inputs":[{"name":"input","shape":[%d,256],"datatype":"FP32","data":[' % rows
        + b",".join([b"0"] * (rows * 256))
        + b"]}]}"
    )
    response = http.post("/v2/models/mlp/infer", content=body)
    assert response.status_code == 413
    assert "retry-after" not in response.headers
    assert "has 8193 rows; this model takes at most 8192 rows" in response.json()["error"]


@pytest.mark.parametrize(
    ("version", "status"),
    [("%C2%B9", 400), ("1" * 5000, 404), ("01", 404), ("%EF%BC%91", 400), ("%D9%A1", 400)],
)
def test_odd_versions_are_refused(http: httpx.Client, version: str, status: int) -> None:
    # Fails before: 500 for the superscript and the 5,000 digits; the rest were version 1.
    response = http.get(f"/v2/models/mlp/versions/{version}/ready")
    assert response.status_code == status
    assert "is not a version of model 'mlp'" in response.json()["error"]


def test_a_lone_surrogate_id_is_400(http: httpx.Client) -> None:
    body = (
        rb'{"id":"\ud800","inputs":[{"name":"input","shape":[1,256],"datatype":"FP32",'
        rb'"data":[' + b",".join([b"0"] * 256) + b"]}]}"
    )
    response = http.post("/v2/models/mlp/infer", content=body)
    assert response.status_code == 400
    assert "lone UTF-16 surrogate escape" in response.json()["error"]
