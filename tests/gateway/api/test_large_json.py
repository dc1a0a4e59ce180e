"""Large JSON bodies through the app: decoded in slices, answered as the exact codec does."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from backends.base import Array
from gateway.protocol import sliced_request
from gateway.protocol.sliced_tensor import decode_sliced
from support.app import make_settings, open_client
from support.paths import DEMO_MODELS

ROWS = 200


def mlp_body(data: object, shape: list[int]) -> bytes:
    return orjson.dumps(
        {
            "id": "big",
            "inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": data}],
        }
    )


def bodies() -> list[bytes]:
    x = np.random.default_rng(3).standard_normal((ROWS, 256)).astype(np.float32)
    nested = x.tolist()
    ragged = [*nested[:-1], nested[-1][:-1]]
    mistyped = [*nested[:-1], [*nested[-1][:-1], "1.0"]]
    return [
        mlp_body(nested, [ROWS, 256]),
        mlp_body(x.ravel().tolist(), [ROWS, 256]),
        mlp_body(ragged, [ROWS, 256]),
        mlp_body(mistyped, [ROWS, 256]),
        mlp_body(nested, [ROWS, 255]),
        mlp_body(nested, [ROWS, 256]).replace(b'"id"', b'"ident"'),
    ]


@pytest.mark.parametrize("index", range(len(bodies())))
async def test_large_bodies_get_the_same_answer_sliced_or_not(
    index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = bodies()[index]
    assert len(body) > 300_000
    decoded: list[Array | None] = []

    async def counted(*args: Any, **kwargs: Any) -> Array | None:
        decoded.append(await decode_sliced(*args, **kwargs))
        return decoded[-1]

    monkeypatch.setattr(sliced_request, "decode_sliced", counted)
    answers = []
    for slicing in (True, False):
        settings = make_settings(
            DEMO_MODELS, json_slicing=slicing, json_slicing_min_bytes=4096, json_slice_bytes=4096
        )
        async with open_client(settings) as client:
            response = await client.post("/v2/models/mlp/infer", content=body)
        answers.append((response.status_code, response.content))
    assert answers[0] == answers[1]
    assert answers[0][0] == (200 if index < 2 else 400)
    if index < 2:  # the slices decoded it, once (not the exact codec after a fallback)
        assert len(decoded) == 1
        assert decoded[0] is not None
