"""An Open Inference Protocol request to checked arrays, and the outputs back: JSON, with
the binary tensor data extension on both sides (``gateway.protocol.binary_codec``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import Array, ModelSignature
from backends.datatypes import from_numpy
from gateway.errors import InvalidInput
from gateway.protocol.binary_codec import (
    binary_body,
    decode_binary_tensor,
    slice_binary,
    split_body,
    take_binary_sizes,
    tensor_bytes,
)
from gateway.protocol.classification import check_parameters, class_counts, classify
from gateway.protocol.envelope import binary_outputs, parse_request, select_outputs
from gateway.protocol.json_codec import (
    check_names,
    check_shared_dimensions,
    decode_tensor,
    dumps,
    encode_tensor,
    parse_json,
)
from gateway.protocol.shm_tensors import (
    BYTE_SIZE,
    Callers,
    RegionPart,
    input_bytes,
    output_regions,
    written_output,
)
from gateway.protocol.wire import InferenceRequest, RequestInput


@dataclass(frozen=True, slots=True)
class ProtocolRequest:
    """A decoded request: arrays checked against the signature, outputs to compute."""

    inputs: dict[str, Array]
    outputs: list[str]
    parameters: Mapping[str, Any] | None
    id: str | None
    binary_outputs: frozenset[str] = frozenset()
    """The outputs to send as binary data."""
    classifications: Mapping[str, int] = field(default_factory=dict)
    """The outputs to send as their top-k classes, with k (the classification extension)."""
    regions: Mapping[str, RegionPart] = field(default_factory=dict)
    """The outputs to write to shared memory (the shared-memory extension)."""


def decode_protocol_request(
    body: bytes,
    headers: Mapping[str, str],
    signature: ModelSignature,
    *,
    allow_non_finite: bool,
    max_rows: int | None = None,
    callers: Callers = (None, None),
) -> ProtocolRequest:
    """Parse, validate and decode one inference request (lower-case ``headers``), JSON or
    with binary tensors or tensors in the ``callers``' shared memory; ``max_rows`` bounds
    the batch axis."""
    header, binary = split_body(body, headers)
    try:
        raw = parse_json(header, allow_non_finite=allow_non_finite)
    except InvalidInput as exc:
        if binary is None:
            raise
        raise InvalidInput(
            f"the JSON header (the first {len(header)} bytes, as Inference-Header-Content-Length "
            f"says): {exc.message}"
        ) from None
    in_regions: list[str] = []
    sizes = take_binary_sizes(raw, binary, len(signature.inputs), in_regions)
    request = parse_request(raw, signature)
    if request.parameters is None and request.outputs is None and _plain(request):
        # No parameter anywhere, no output named: nothing to check, classify or send as
        # binary (the usual request, whose every other step is per request too).
        outputs = [spec.name for spec in signature.outputs]
        inputs = _decode_inputs(
            request.inputs, signature, {}, allow_non_finite=allow_non_finite, max_rows=max_rows
        )
        return ProtocolRequest(inputs, outputs, None, request.id)
    check_parameters(request)
    outputs = select_outputs(request.outputs, signature)
    regions = output_regions(request.outputs, callers) if request.outputs else {}
    classifications = class_counts(request, signature)
    chunks = slice_binary(binary, sizes) if binary is not None else {}
    if in_regions:
        for inp in request.inputs:
            if inp.name in in_regions and inp.parameters is not None:
                chunks[inp.name] = input_bytes(inp.parameters, callers, inp.name)
    inputs = _decode_inputs(
        request.inputs,
        signature,
        chunks,
        allow_non_finite=allow_non_finite,
        max_rows=max_rows,
        in_regions=in_regions,
    )
    return ProtocolRequest(
        inputs,
        outputs,
        request.parameters,
        request.id,
        binary_outputs(request, outputs).difference(regions),
        classifications,
        regions,
    )


def _plain(request: InferenceRequest) -> bool:
    return all(inp.parameters is None for inp in request.inputs)


def _decode_inputs(
    inputs: Sequence[RequestInput],
    signature: ModelSignature,
    chunks: Mapping[str, memoryview],
    *,
    allow_non_finite: bool,
    max_rows: int | None,
    in_regions: Sequence[str] = (),
) -> dict[str, Array]:
    check_names(inputs, signature)
    arrays: dict[str, Array] = {}
    for inp in inputs:
        spec = signature.input(inp.name)
        if spec is None:
            continue
        chunk = chunks.get(inp.name)
        arrays[inp.name] = (
            decode_tensor(inp, spec, allow_non_finite=allow_non_finite, max_rows=max_rows)
            if chunk is None
            else decode_binary_tensor(
                inp,
                spec,
                chunk,
                allow_non_finite=allow_non_finite,
                max_rows=max_rows,
                size_field=BYTE_SIZE if inp.name in in_regions else "binary_data_size",
            )
        )
    check_shared_dimensions(arrays, signature)
    return arrays


def encode_protocol_response(
    model_name: str,
    version: int,
    request_id: str | None,
    outputs: list[str],
    results: Mapping[str, Array],
    binary: frozenset[str] = frozenset(),
    classifications: Mapping[str, int] | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    regions: Mapping[str, RegionPart] | None = None,
) -> bytes:
    """The response naming ``outputs`` in order: JSON, or a ``BinaryBody`` when any output
    is in ``binary``; an output in ``classifications`` is sent as its top-k classes, with
    the ``labels`` of that output when there are some; one in ``regions`` is written
    there, its answer without data."""
    tensors: list[bytes] = []
    described: list[dict[str, Any]] = []
    for name in outputs:
        array = results[name]
        k = (classifications or {}).get(name)
        if k is not None:
            array = classify(array, k, (labels or {}).get(name))
        part = regions.get(name) if regions else None
        if part is not None:
            described.append(written_output(name, array, tensor_bytes(array), part))
            continue
        if name not in binary:
            described.append(encode_tensor(name, array))
            continue
        data = tensor_bytes(array)
        tensors.append(data)
        described.append(
            {
                "name": name,
                "datatype": from_numpy(array.dtype),
                "shape": list(array.shape),
                "parameters": {"binary_data_size": len(data)},
            }
        )
    document: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(version),
        "outputs": described,
    }
    if request_id is not None:
        document["id"] = request_id
    header = dumps(document)
    return binary_body(header, tensors) if tensors else header
