"""An Open Inference Protocol JSON request to checked arrays, and the outputs back to JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.base import Array, ModelSignature
from gateway.errors import InvalidInput
from gateway.protocol.envelope import (
    BINARY_HINT,
    parse_request,
    reject_binary_extension,
    select_outputs,
)
from gateway.protocol.json_codec import decode_inputs, dumps, encode_tensor, parse_json

BINARY_HEADER = "inference-header-content-length"


@dataclass(frozen=True, slots=True)
class ProtocolRequest:
    """A decoded request: arrays checked against the signature, outputs to compute."""

    inputs: dict[str, Array]
    outputs: list[str]
    parameters: Mapping[str, Any] | None
    id: str | None


def decode_protocol_request(
    body: bytes,
    headers: Mapping[str, str],
    signature: ModelSignature,
    *,
    allow_non_finite: bool,
    max_rows: int | None = None,
) -> ProtocolRequest:
    """Parse, validate and decode one JSON inference request (lower-case ``headers``);
    ``max_rows`` bounds the batch axis."""
    if BINARY_HEADER in headers:
        raise InvalidInput(f"header Inference-Header-Content-Length: {BINARY_HINT}")
    request = parse_request(parse_json(body, allow_non_finite=allow_non_finite), signature)
    reject_binary_extension(request)
    outputs = select_outputs(request.outputs, signature)
    inputs = decode_inputs(
        request.inputs, signature, allow_non_finite=allow_non_finite, max_rows=max_rows
    )
    return ProtocolRequest(inputs, outputs, request.parameters, request.id)


def encode_protocol_response(
    model_name: str,
    version: int,
    request_id: str | None,
    outputs: list[str],
    results: Mapping[str, Array],
) -> bytes:
    """The JSON response naming ``outputs`` in order."""
    document: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(version),
        "outputs": [encode_tensor(out, results[out]) for out in outputs],
    }
    if request_id is not None:
        document["id"] = request_id
    return dumps(document)
