"""The binary tensor data extension: raw tensors after a JSON header, in and out.

A request with the ``Inference-Header-Content-Length`` header carries that many bytes of
JSON first; the rest of the body is the raw data of every input whose parameters give a
``binary_data_size``, in the order those inputs appear. Numeric tensors are little-endian
and row-major, read in place (``np.frombuffer`` on the body: no copy when aligned); BYTES
tensors are elements each after a 4-byte little-endian length. A response with binary
outputs is laid out the same way (``BinaryBody``). Every size is checked against the
declared shape and datatype before any element is read.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from backends.base import Array, TensorSpec
from gateway.errors import InvalidInput
from gateway.protocol.json_codec import check_declaration
from gateway.protocol.wire import RequestInput
from gateway.validation import shown

BINARY_HEADER = "inference-header-content-length"
_PREFIX = struct.Struct("<I")
_MAX_DIGITS = 19  # any longer header length is past any body the server reads


class BinaryBody(bytes):
    """A response body: a JSON header of ``header_length`` bytes, binary tensors after it."""

    header_length: int


def split_body(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, memoryview | None]:
    """The JSON header of a body and the binary part after it (None without the header)."""
    raw = headers.get(BINARY_HEADER)
    if raw is None:
        return body, None
    value = raw.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
        raise InvalidInput(
            f"header Inference-Header-Content-Length must be a non-negative integer (the "
            f"length of the JSON header in bytes), got '{shown(value[:40])}'"
        )
    length = int(value)
    if length > len(body):
        raise InvalidInput(
            f"header Inference-Header-Content-Length is {length}, past the end of the "
            f"{len(body)}-byte body"
        )
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def take_binary_sizes(
    raw: Any, binary: memoryview | None, max_inputs: int, in_regions: list[str]
) -> dict[str, int]:
    """The ``binary_data_size`` of each input of a parsed JSON header, by name, in order;
    the names of the inputs in shared memory are added to ``in_regions``.

    Runs before the envelope is validated: each binary input and each input in shared
    memory gets an empty ``data`` placeholder (the protocol's JSON form requires one).
    Anything malformed that is not about binary data (an input that is not an object, too
    many inputs) is left to the envelope's validation, which names it.
    """
    inputs = raw.get("inputs") if isinstance(raw, dict) else None
    if not isinstance(inputs, list) or len(inputs) > max_inputs:
        return {}
    sizes: dict[str, int] = {}
    for item in inputs:
        parameters = item.get("parameters") if isinstance(item, dict) else None
        if not isinstance(parameters, dict):
            continue
        if "shared_memory_region" in parameters:
            _take_region_input(item, parameters, in_regions)
            continue
        if "binary_data_size" not in parameters:
            continue
        name = item.get("name")
        size = parameters["binary_data_size"]
        if type(size) is not int or size < 0:
            raise InvalidInput(
                f"{_label(name)}: parameters.binary_data_size must be a non-negative integer "
                f"(its length in bytes), got {shown(repr(size)[:40])}"
            )
        if "data" in item or binary is None:
            raise _misplaced(name, "data" in item)
        if isinstance(name, str):
            if name in sizes:
                raise InvalidInput(f"{_label(name)} is given more than once")
            sizes[name] = size
        item["data"] = []
    return sizes


def _misplaced(name: object, with_data: bool) -> InvalidInput:
    """Why an input's ``binary_data_size`` cannot be honoured."""
    if with_data:
        return InvalidInput(
            f"{_label(name)} has both data and parameters.binary_data_size; send its "
            "tensor either as JSON data or as binary data, not both"
        )
    return InvalidInput(
        f"{_label(name)} has parameters.binary_data_size but the request has no "
        "Inference-Header-Content-Length header, so its body holds no binary data"
    )


def _take_region_input(
    item: dict[str, Any], parameters: dict[str, Any], in_regions: list[str]
) -> None:
    name = item.get("name")
    if "data" in item or "binary_data_size" in parameters:
        other = "'data'" if "data" in item else "'binary_data_size' in 'parameters'"
        raise InvalidInput(
            f"{_label(name)}: Input must set only one of the following fields: 'data', "
            "'binary_data_size' in 'parameters', 'shared_memory_region' in 'parameters'. "
            f"But set {other} and 'shared_memory_region'"
        )
    if isinstance(name, str):
        in_regions.append(name)
    item["data"] = []


def _label(name: object) -> str:
    return f"input '{shown(name)}'" if isinstance(name, str) else "an input"


def slice_binary(binary: memoryview, sizes: Mapping[str, int]) -> dict[str, memoryview]:
    """The binary part cut into each input's bytes; all of it must be accounted for."""
    chunks: dict[str, memoryview] = {}
    offset = 0
    for name, size in sizes.items():
        if offset + size > len(binary):
            raise InvalidInput(
                f"input '{shown(name)}': binary_data_size {size} runs past the end of the "
                f"body ({len(binary) - offset} bytes of binary data remain for it)"
            )
        chunks[name] = binary[offset : offset + size]
        offset += size
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary)} bytes of binary data after its JSON header, but the "
            f"inputs' binary_data_size add up to {offset}"
        )
    return chunks


def decode_binary_tensor(
    inp: RequestInput,
    spec: TensorSpec,
    chunk: memoryview,
    *,
    allow_non_finite: bool,
    max_rows: int | None = None,
    size_field: str = "binary_data_size",
) -> Array:
    """One binary input as an array of the spec's dtype and the declared shape, a view on
    the body where its bytes are aligned for the dtype; ``size_field`` names the parameter
    that gave the chunk's size, for the errors."""
    shape = check_declaration(inp, spec, max_rows)
    count = math.prod(shape)
    if spec.dtype.kind == "O":
        return _decode_bytes(inp.name, chunk, shape, count, size_field)
    itemsize = spec.dtype.itemsize
    expected = count * itemsize
    if len(chunk) != expected:
        raise InvalidInput(
            f"input '{inp.name}': {size_field} is {len(chunk)} bytes; shape "
            f"{list(shape)} of {inp.datatype} needs {expected} bytes ({count} x {itemsize})"
        )
    array = np.frombuffer(chunk, dtype=spec.dtype.newbyteorder("<"))
    if not array.flags.aligned or array.dtype != spec.dtype:
        array = array.astype(spec.dtype)  # misplaced in the body, or a big-endian host
    if spec.dtype.kind == "b" and count and np.frombuffer(chunk, np.uint8).max() > 1:
        raise InvalidInput(f"input '{inp.name}': BOOL binary data must be bytes 0 or 1")
    if spec.dtype.kind == "f" and not allow_non_finite and not np.isfinite(array).all():
        raise InvalidInput(
            f"input '{inp.name}': values must be finite (allow_non_finite is off for this model)"
        )
    return array.reshape(shape)


def _decode_bytes(
    name: str, chunk: memoryview, shape: tuple[int, ...], count: int, size_field: str
) -> Array:
    end = len(chunk)
    if count * _PREFIX.size > end:
        raise InvalidInput(
            f"input '{name}': {size_field} is {end} bytes; {count} BYTES elements of shape "
            f"{list(shape)} need at least {count * _PREFIX.size} (a 4-byte length each)"
        )
    items: list[str] = []
    offset = 0
    for index in range(count):
        if offset + _PREFIX.size > end:
            raise InvalidInput(
                f"input '{name}': BYTES element {index} has no 4-byte length: the binary data "
                f"ends at byte {end} ({count} elements expected for shape {list(shape)})"
            )
        (length,) = _PREFIX.unpack_from(chunk, offset)
        offset += _PREFIX.size
        if offset + length > end:
            raise InvalidInput(
                f"input '{name}': BYTES element {index} has length {length}, past the end of "
                f"the input's binary data ({end - offset} bytes remain)"
            )
        try:
            items.append(str(chunk[offset : offset + length], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"input '{name}': BYTES element {index} is not UTF-8 text") from None
        offset += length
    if offset != end:
        raise InvalidInput(
            f"input '{name}': {size_field} is {end} bytes but its {count} BYTES elements "
            f"end at byte {offset}"
        )
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


def tensor_bytes(array: Array) -> bytes:
    """An output's raw data as the extension writes it."""
    if array.dtype.kind in "OUS":
        parts: list[bytes] = []
        for value in array.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(_PREFIX.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def binary_body(header: bytes, tensors: Iterable[bytes]) -> BinaryBody:
    """The response body: ``header`` (JSON), then each tensor's bytes."""
    body = BinaryBody(b"".join([header, *tensors]))
    body.header_length = len(header)
    return body
