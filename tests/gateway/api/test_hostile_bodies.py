"""Bodies no JSON library should pass on: lone surrogates and integers beyond a double."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.api.exception_handlers import error_response
from support.app import make_settings, open_client

pytestmark = pytest.mark.hostile

INPUT = b'{"name":"%s","shape":[1,256],"datatype":"FP32","data":[%s]}'
ZEROS = b",".join([b"0"] * 256)


def protocol_body(name: bytes = b"input", output: bytes = b"logits", id_: bytes = b"r") -> bytes:
    """An mlp request with raw (already escaped) JSON text for the strings under test."""
    return (
        b'{"id":"%s","inputs":[' % id_
        + INPUT % (name, ZEROS)
        + b'],"outputs":[{"name":"%s"}]}' % output
    )


def typed_body(key: bytes = b"input", output: bytes = b"logits") -> bytes:
    return b'{"inputs":{"%s":[[%s]]},"outputs":["%s"]}' % (key, ZEROS, output)


LONE = rb"\ud800"
SURROGATE_BODIES = [
    ("input name", "/v2/models/mlp/infer", protocol_body(name=LONE)),
    ("output name", "/v2/models/mlp/infer", protocol_body(output=LONE)),
    ("id", "/v2/models/mlp/infer", protocol_body(id_=LONE)),
    ("low surrogate id", "/v2/models/mlp/infer", protocol_body(id_=rb"\udc00x")),
    ("typed key", "/models/mlp/predict", typed_body(key=LONE)),
    ("typed output", "/models/mlp/predict", typed_body(output=LONE)),
    # orjson stops at the NaN first; the stdlib parser would pass the surrogate on.
    (
        "after a NaN",
        "/v2/models/mlp/infer",
        protocol_body(id_=LONE).replace(b"[0,", b"[NaN,", 1),
    ),
]


@pytest.fixture(params=[True, False], ids=["allow_non_finite", "finite_only"])
async def mlp_client(
    request: pytest.FixtureRequest, repository: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The demo models, mlp with ``allow_non_finite`` on or off."""
    config = repository / "mlp" / "config.yaml"
    config.write_text(config.read_text() + f"allow_non_finite: {str(request.param).lower()}\n")
    async with open_client(make_settings(repository)) as http:
        yield http


@pytest.mark.parametrize(
    ("case", "path", "body"), SURROGATE_BODIES, ids=[c[0] for c in SURROGATE_BODIES]
)
async def test_lone_surrogates_are_400_saying_so(
    mlp_client: httpx.AsyncClient, case: str, path: str, body: bytes
) -> None:
    # Fails before: 500 with allow_non_finite (the string reached orjson.dumps), else a
    # 400 blaming a "non-finite number".
    del case
    response = await mlp_client.post(path, content=body)
    assert response.status_code == 400
    assert "lone UTF-16 surrogate escape" in response.json()["error"]


async def test_a_valid_surrogate_pair_is_text(mlp_client: httpx.AsyncClient) -> None:
    response = await mlp_client.post(
        "/v2/models/mlp/infer", content=protocol_body(id_=rb"\ud83d\ude00")
    )
    assert response.status_code == 200
    assert response.json()["id"] == "\U0001f600"


@pytest.mark.parametrize("path", ["/v2/models/mlp/infer", "/models/mlp/predict"])
async def test_integers_beyond_a_double_are_400_saying_so(
    mlp_client: httpx.AsyncClient, path: str
) -> None:
    # Fails before: "non-finite number" without allow_non_finite (misleading), and with it
    # the integer went on as a Python int.
    huge = b"1" + b"0" * 400
    body = protocol_body() if path.startswith("/v2") else typed_body()
    response = await mlp_client.post(path, content=body.replace(b"[0,", b"[" + huge + b",", 1))
    assert response.status_code == 400
    assert "integer literal beyond the range of a double" in response.json()["error"]


def test_an_error_message_with_a_lone_surrogate_still_encodes() -> None:
    # Fails before: orjson.dumps raised TypeError, turning the 400 into a 500.
    response = error_response(400, "unknown input '\ud800'")
    assert response.status_code == 400
    assert orjson.loads(response.body) == {"error": "unknown input '\\ud800'"}
