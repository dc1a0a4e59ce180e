"""A ``ModelInferRequest`` to checked arrays, and the outputs back to a ``ModelInferResponse``.

The tensors go through the protocol's own checks (``gateway.protocol``): a gRPC request is
refused for what a REST request with the same tensors would be, with the same words.
Tensors come as ``raw_input_contents`` (one buffer per input, in input order, laid out as
the binary tensor extension lays them out: tritonclient's default) or as typed
``contents``; outputs always leave as ``raw_output_contents``, as Triton sends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import Array
from backends.datatypes import from_numpy
from gateway.dataplane.codecs import DecodedRequest, DecodingRules
from gateway.errors import InvalidInput
from gateway.proto import grpc_service_pb2 as pb
from gateway.protocol.binary_codec import decode_binary_tensor, tensor_bytes
from gateway.protocol.classification import check_parameters, class_counts, classify
from gateway.protocol.envelope import check_count, select_outputs
from gateway.protocol.json_codec import check_names, check_shared_dimensions, decode_tensor
from gateway.protocol.shm_tensors import (
    BYTE_SIZE,
    REGION,
    Callers,
    RegionPart,
    input_bytes,
    output_regions,
)
from gateway.protocol.wire import InferenceRequest, RequestInput, RequestOutput
from gateway.validation import shown

# The typed contents field of each datatype; FP16 and BF16 have none (raw only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parameters_of(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any] | None:
    """A protobuf ``parameters`` map as the plain values REST requests carry."""
    if not parameters:
        return None
    values: dict[str, Any] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = None if choice is None else getattr(parameter, choice)
    return values


def decode_infer_request(
    message: pb.ModelInferRequest, rules: DecodingRules, subject: str | None = None
) -> DecodedRequest:
    """The request's arrays checked against ``rules``, the outputs to compute, and the
    encoder of its answer; ``InvalidInput`` (or ``PayloadTooLarge``) as on REST. Tensors
    may be in the shared-memory regions of ``subject``, the caller."""
    signature = rules.signature
    check_count(list(message.inputs), "inputs", signature.inputs, list)
    check_count(list(message.outputs), "outputs", signature.outputs, list)
    inputs = [
        RequestInput.model_construct(
            name=tensor.name,
            shape=list(tensor.shape),
            datatype=tensor.datatype,
            parameters=parameters_of(tensor.parameters),
            data=[],
        )
        for tensor in message.inputs
    ]
    outputs = [
        RequestOutput.model_construct(name=out.name, parameters=parameters_of(out.parameters))
        for out in message.outputs
    ]
    request = InferenceRequest.model_construct(
        id=message.id or None,
        parameters=parameters_of(message.parameters),
        inputs=inputs,
        outputs=outputs or None,
    )
    callers = (rules.regions, subject)
    in_regions = {inp.name for inp in inputs if inp.parameters and REGION in inp.parameters}
    raw = message.raw_input_contents
    if raw and len(raw) != len(inputs) - len(in_regions):
        raise InvalidInput(
            f"request has {len(raw)} raw_input_contents for {len(inputs) - len(in_regions)} "
            "inputs not in shared memory; with raw_input_contents each of those has exactly "
            "one, in input order"
        )
    check_parameters(request)
    names = select_outputs(request.outputs, signature)
    regions = output_regions(request.outputs, callers) if outputs else {}
    classifications = class_counts(request, signature)
    check_names(inputs, signature)
    arrays: dict[str, Array] = {}
    index = 0
    for inp, tensor in zip(inputs, message.inputs, strict=True):
        spec = signature.input(inp.name)
        assert spec is not None  # check_names
        if inp.name in in_regions:
            arrays[inp.name] = _region_input(inp, tensor, message.model_name, callers, rules)
        elif raw:
            if tensor.HasField("contents"):
                raise InvalidInput(
                    "contents field must not be specified when using raw_input_contents "
                    f"for '{shown(inp.name)}' for model '{shown(message.model_name)}': "
                    "send each input's data one way only"
                )
            arrays[inp.name] = decode_binary_tensor(
                inp,
                spec,
                memoryview(raw[index]),
                allow_non_finite=rules.allow_non_finite,
                max_rows=rules.max_rows,
            )
            index += 1
        else:
            inp.data = _typed_contents(inp, tensor)
            arrays[inp.name] = decode_tensor(
                inp, spec, allow_non_finite=rules.allow_non_finite, max_rows=rules.max_rows
            )
    check_shared_dimensions(arrays, signature)
    request_id, labels = message.id, rules.labels

    def encode(name: str, version: int, results: Mapping[str, Array]) -> bytes:
        return encode_infer_response(
            name, version, request_id, names, results, classifications, labels, regions
        )

    return DecodedRequest(arrays, names, request.parameters, encode)


def _region_input(
    inp: RequestInput,
    tensor: pb.ModelInferRequest.InferInputTensor,
    model_name: str,
    callers: Callers,
    rules: DecodingRules,
) -> Array:
    """An input read from the caller's shared memory."""
    if tensor.HasField("contents"):
        raise InvalidInput(
            "unexpected 'content' provided when using shared memory for input tensor "
            f"'{shown(inp.name)}' for model '{shown(model_name)}'"
        )
    spec = rules.signature.input(inp.name)
    assert spec is not None  # check_names
    assert inp.parameters is not None  # it names the region
    return decode_binary_tensor(
        inp,
        spec,
        input_bytes(inp.parameters, callers, inp.name),
        allow_non_finite=rules.allow_non_finite,
        max_rows=rules.max_rows,
        size_field=BYTE_SIZE,
    )


def _typed_contents(inp: RequestInput, tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    """An input's typed ``contents`` as a flat list for the JSON codec's checks."""
    field = CONTENTS_FIELD.get(inp.datatype)
    if field is None:
        if inp.datatype in ("FP16", "BF16"):
            raise InvalidInput(
                f"input '{shown(inp.name)}': {inp.datatype} has no typed contents field; "
                "send it in raw_input_contents"
            )
        return []  # the datatype itself is refused by the codec, naming the known ones
    contents = tensor.contents
    for other in set(CONTENTS_FIELD.values()) - {field}:
        if getattr(contents, other):
            raise InvalidInput(
                f"input '{shown(inp.name)}': {inp.datatype} data goes in contents.{field}, "
                f"got contents.{other}"
            )
    values = getattr(contents, field)
    if field != "bytes_contents":
        return list(values)
    texts: list[Any] = []
    for index, value in enumerate(values):
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(
                f"input '{shown(inp.name)}': BYTES element {index} is not UTF-8 text"
            ) from None
    return texts


def encode_infer_response(
    model_name: str,
    version: int,
    request_id: str,
    outputs: Sequence[str],
    results: Mapping[str, Array],
    classifications: Mapping[str, int],
    labels: Mapping[str, Sequence[str]] | None,
    regions: Mapping[str, RegionPart] | None = None,
) -> bytes:
    """The serialised ``ModelInferResponse`` naming ``outputs`` in order, each tensor in
    ``raw_output_contents``; an output in ``classifications`` as its top-k classes, one
    in ``regions`` written there (its raw contents empty, as Triton sends it)."""
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=str(version), id=request_id
    )
    for name in outputs:
        array = results[name]
        k = classifications.get(name)
        if k is not None:
            array = classify(array, k, (labels or {}).get(name))
        response.outputs.add(name=name, datatype=from_numpy(array.dtype), shape=array.shape)
        part = regions.get(name) if regions else None
        if part is None:
            response.raw_output_contents.append(tensor_bytes(array))
            continue
        part.write(name, tensor_bytes(array))
        response.raw_output_contents.append(b"")
    return response.SerializeToString()
