"""Both codecs bound the work of refusing a body by the model's size, never the body's."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import orjson
import pytest

from backends.base import ModelSignature, TensorSpec
from gateway.dataplane.codecs import PROTOCOL_JSON, TYPED_JSON, DecodingRules, RequestCodec
from gateway.errors import InvalidInput

pytestmark = pytest.mark.hostile

SIGNATURE = ModelSignature(
    inputs=(TensorSpec("x", np.dtype("float32"), (None, 4)),),
    outputs=(TensorSpec("y", np.dtype("float32"), (None, 2)),),
)
N = 200_000
INPUT = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
MANY_KEYS = {f"k{i}": 0 for i in range(N)}

BOMBS: list[tuple[str, RequestCodec, dict[str, Any], str]] = [
    ("inputs", PROTOCOL_JSON, {"inputs": [{}] * N}, "request has 200000 inputs; the model has 1"),
    (
        "outputs",
        PROTOCOL_JSON,
        {"inputs": [INPUT], "outputs": [{}] * N},
        "request has 200000 outputs; the model has 1 (y), so a request names at most 1",
    ),
    (
        "shape",
        PROTOCOL_JSON,
        {"inputs": [{**INPUT, "shape": ["a"] * N}]},
        "inputs[0] (x).shape[0]: Input should be a valid integer",
    ),
    ("rank", PROTOCOL_JSON, {"inputs": [{**INPUT, "shape": [1] * N}]}, "rank 200000 is absurd"),
    (
        "input fields",
        PROTOCOL_JSON,
        {"inputs": [{**INPUT, **MANY_KEYS}]},
        "inputs[0]: unknown field(s) 'k0', 'k1', 'k2'; the fields are: name, shape",
    ),
    (
        "top-level fields",
        PROTOCOL_JSON,
        {"inputs": [INPUT], **MANY_KEYS},
        "unknown field(s) 'k0', 'k1', 'k2'; the fields are: id, parameters, inputs, outputs",
    ),
    (
        "inputs as an object",
        PROTOCOL_JSON,
        {"inputs": MANY_KEYS},
        "inputs: Input should be a valid list",
    ),
    (
        "typed outputs",
        TYPED_JSON,
        {"inputs": {"x": [[1, 2, 3, 4]]}, "outputs": [1] * N},
        "request has 200000 outputs",
    ),
    ("typed inputs", TYPED_JSON, {"inputs": MANY_KEYS}, "request has 200000 inputs"),
    (
        "typed fields",
        TYPED_JSON,
        {"inputs": {"x": [[1, 2, 3, 4]]}, **MANY_KEYS},
        "unknown field(s) 'k0', 'k1', 'k2'; the fields are: inputs, outputs",
    ),
]


def _peak_bytes(run: Any) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("case", "codec", "document", "message"), BOMBS, ids=[bomb[0] for bomb in BOMBS]
)
def test_refusing_a_bomb_costs_no_more_than_parsing_it(
    case: str, codec: RequestCodec, document: dict[str, Any], message: str
) -> None:
    # Fails before: 200,000 empty inputs made Pydantic build 800,000 errors (+858 MB of
    # RSS and 2.4 s here), and the other bombs one error per element or key.
    del case
    body = orjson.dumps(document)
    parsing = _peak_bytes(lambda: orjson.loads(body))
    caught: list[InvalidInput] = []

    def refuse() -> None:
        with pytest.raises(InvalidInput) as raised:
            codec.decode(body, {}, DecodingRules(SIGNATURE))
        caught.append(raised.value)

    refusing = _peak_bytes(refuse)
    assert message in caught[0].message
    assert len(caught[0].message) < 300
    assert refusing < parsing * 1.25 + 2**20
