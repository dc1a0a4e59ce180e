"""A large JSON inference request decoded with its big tensors in slices, or exactly.

The envelope (the body with its large ``data`` arrays cut out, ``json_spans``) goes
through the exact codec's own steps; each cut-out array is decoded in slices that give
the event loop back (``sliced_tensor``). On anything irregular, in the envelope or in an
array, the whole body goes through ``decode_protocol_request``: what it answers (its
arrays, or its error) is by construction what a small body gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from backends.base import Array, ModelSignature
from gateway.errors import InvalidInput, PayloadTooLarge
from gateway.protocol.binary_codec import BINARY_HEADER, take_binary_sizes
from gateway.protocol.classification import check_parameters, class_counts
from gateway.protocol.envelope import binary_outputs, parse_request, select_outputs
from gateway.protocol.json_codec import (
    check_declaration,
    check_names,
    check_shared_dimensions,
    decode_tensor,
    parse_json,
)
from gateway.protocol.json_spans import CutBody, cut_arrays, find_data_arrays
from gateway.protocol.request_codec import ProtocolRequest, decode_protocol_request
from gateway.protocol.shm_tensors import Callers, names_regions
from gateway.protocol.sliced_tensor import decode_sliced


async def decode_large_request(
    body: bytes,
    headers: Mapping[str, str],
    signature: ModelSignature,
    *,
    allow_non_finite: bool,
    max_rows: int | None,
    slice_bytes: int,
    abandoned: Callable[[], bool],
    callers: Callers = (None, None),
) -> ProtocolRequest:
    """What ``decode_protocol_request`` returns (or raises) for this body, with each
    ``data`` array of at least ``slice_bytes`` decoded in slices of that size; raises
    ``Abandoned`` once ``abandoned()`` is true."""
    decoded = None
    if BINARY_HEADER not in headers:  # binary tensors are not parsed: nothing to slice
        spans = find_data_arrays(body, slice_bytes, 4 * len(signature.inputs))
        if spans:
            decoded = await _decode_cut(
                cut_arrays(body, spans),
                body,
                signature,
                allow_non_finite=allow_non_finite,
                max_rows=max_rows,
                slice_bytes=slice_bytes,
                abandoned=abandoned,
            )
    if decoded is not None:
        return decoded
    return decode_protocol_request(
        body,
        headers,
        signature,
        allow_non_finite=allow_non_finite,
        max_rows=max_rows,
        callers=callers,
    )


async def _decode_cut(
    cut: CutBody,
    body: bytes,
    signature: ModelSignature,
    *,
    allow_non_finite: bool,
    max_rows: int | None,
    slice_bytes: int,
    abandoned: Callable[[], bool],
) -> ProtocolRequest | None:
    """The steps of ``decode_protocol_request`` on the envelope, the cut-out arrays
    decoded in slices; None wherever the exact codec must decide."""
    try:
        raw = parse_json(cut.envelope, allow_non_finite=allow_non_finite)
        in_regions: list[str] = []
        take_binary_sizes(raw, None, len(signature.inputs), in_regions)
        request = parse_request(raw, signature)
        if in_regions or names_regions(request.outputs):
            return None  # shared memory: the exact codec reads and writes it
        check_parameters(request)
        outputs = select_outputs(request.outputs, signature)
        classifications = class_counts(request, signature)
        check_names(request.inputs, signature)
    except (InvalidInput, PayloadTooLarge):
        return None
    indices = [cut.span_of(inp.data) for inp in request.inputs]
    if sorted(index for index in indices if index is not None) != list(range(len(cut.spans))):
        return None  # an array cut out of somewhere else than an input's data, or twice
    arrays: dict[str, Array] = {}
    for inp, index in zip(request.inputs, indices, strict=True):
        spec = signature.input(inp.name)
        assert spec is not None  # check_names saw to it
        try:
            if index is None:
                arrays[inp.name] = decode_tensor(
                    inp, spec, allow_non_finite=allow_non_finite, max_rows=max_rows
                )
                continue
            shape = check_declaration(inp, spec, max_rows)
        except (InvalidInput, PayloadTooLarge):
            return None
        array = await decode_sliced(
            body,
            cut.spans[index],
            shape,
            spec.dtype,
            slice_bytes=slice_bytes,
            abandoned=abandoned,
        )
        if array is None:
            return None
        arrays[inp.name] = array
    try:
        check_shared_dimensions(arrays, signature)
        binary = binary_outputs(request, outputs)
    except InvalidInput:
        return None
    return ProtocolRequest(
        arrays,
        outputs,
        request.parameters,
        request.id,
        binary,
        classifications,
    )
