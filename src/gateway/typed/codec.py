"""Typed-route bodies: ``{"inputs": {name: nested lists}}`` to checked arrays, and results back.

The shape of each input is read from its nesting, then the protocol's strict codec
(``gateway.protocol.json_codec``) checks and converts it: both route families give the
same errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, StrictStr, ValidationError

from backends.base import Array, ModelSignature, TensorSpec
from backends.datatypes import from_numpy
from gateway.errors import InvalidInput
from gateway.protocol.envelope import check_count, select_outputs, unknown_fields
from gateway.protocol.json_codec import (
    bytes_as_text,
    decode_inputs,
    dumps,
    format_shape,
    parse_json,
)
from gateway.protocol.wire import RequestInput, RequestOutput
from gateway.validation import describe_errors

_JSON_NAMES = {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}


class TypedRequest(BaseModel):
    """The envelope every typed request shares; tensors are left to the codec."""

    model_config = ConfigDict(strict=True, extra="forbid")

    inputs: dict[str, SkipValidation[Any]]
    # fail_fast: one error, not one per element of a long list (issue 10, item 1).
    outputs: Annotated[list[StrictStr], Field(fail_fast=True)] | None = None


def parse_typed_request(
    body: bytes, signature: ModelSignature, *, allow_non_finite: bool
) -> TypedRequest:
    """Parse and validate the envelope of a typed request body; counts are bounded by
    ``signature`` before anything is validated."""
    raw = parse_json(body, allow_non_finite=allow_non_finite)
    if not isinstance(raw, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(raw).__name__}")
    unknown_fields(raw, TypedRequest, "invalid request: ")
    check_count(raw.get("inputs"), "inputs", signature.inputs, dict)
    check_count(raw.get("outputs"), "outputs", signature.outputs, list)
    try:
        return TypedRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"invalid request: {describe_errors(exc.errors())}") from None


def _nested_shape(spec: TensorSpec, value: Any) -> list[int]:
    """The shape nested lists claim, read along the first element of each level."""
    shape: list[int] = []
    level = value
    for axis in range(spec.rank):
        if type(level) is not list:
            got = _JSON_NAMES.get(type(level), "a number")
            raise InvalidInput(
                f"input '{spec.name}': expected lists nested {spec.rank} deep (shape "
                f"{format_shape(spec.shape)}), got {got} at depth {axis}"
            )
        shape.append(len(level))
        if not level:
            # An empty level says nothing about the dimensions below it.
            shape += [0 if below is None else below for below in spec.shape[axis + 1 :]]
            break
        level = level[0]
    return shape


def _as_request_input(name: str, value: Any, signature: ModelSignature) -> RequestInput:
    spec = signature.input(name)
    if spec is None:
        # decode_inputs rejects the unknown name with the list of the model's inputs.
        return RequestInput.model_construct(name=name, shape=[], datatype="BYTES", data=[])
    data = value if spec.rank else [value]
    return RequestInput.model_construct(
        name=name,
        shape=_nested_shape(spec, value),
        datatype=from_numpy(spec.dtype),
        parameters=None,
        data=data,
    )


def decode_typed_request(
    body: bytes, signature: ModelSignature, *, allow_non_finite: bool, max_rows: int | None = None
) -> tuple[dict[str, Array], list[str]]:
    """Arrays checked against ``signature`` and the names of the outputs to compute;
    ``max_rows`` bounds the batch axis."""
    request = parse_typed_request(body, signature, allow_non_finite=allow_non_finite)
    inputs = [_as_request_input(name, value, signature) for name, value in request.inputs.items()]
    arrays = decode_inputs(inputs, signature, allow_non_finite=allow_non_finite, max_rows=max_rows)
    requested = None
    if request.outputs is not None:
        requested = [RequestOutput.model_construct(name=name) for name in request.outputs]
    return arrays, select_outputs(requested, signature)


def _json_tensor(array: Array) -> Any:
    if from_numpy(array.dtype) == "BYTES":
        return bytes_as_text(array).tolist()
    if array.ndim == 0:
        return array.item()
    # orjson writes C-contiguous numpy arrays as nested lists without a Python detour.
    return np.ascontiguousarray(array)


def encode_typed_response(
    model_name: str, version: int, results: Mapping[str, Array], outputs: list[str]
) -> bytes:
    """The typed response body: outputs by name, as nested lists."""
    document = {
        "model_name": model_name,
        "model_version": str(version),
        "outputs": {name: _json_tensor(results[name]) for name in outputs},
    }
    return dumps(document)
