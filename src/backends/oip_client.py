"""The client side of the Open Inference Protocol: a batch as a request body (JSON, or
Triton's binary tensor extension), a response body back into arrays, metadata into a
signature. The upstream is trusted no further than this: every size is checked."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import orjson

from backends.base import Array, ModelSignature, TensorSpec
from backends.datatypes import from_numpy, to_numpy

Wire = Literal["binary", "json"]
BINARY_HEADER = "inference-header-content-length"
_PREFIX = struct.Struct("<I")


class WireError(Exception):
    """An upstream's answer does not follow the protocol; the message says how."""


def _tensor_bytes(array: Array) -> bytes:
    if array.dtype.kind in "OUS":
        parts: list[bytes] = []
        for value in array.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts += [_PREFIX.pack(len(data)), data]
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _json_data(array: Array) -> list[Any]:
    if array.dtype.kind in "OUS":
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    values: list[Any] = array.ravel().tolist()
    return values


def encode_request(
    inputs: Mapping[str, Array], outputs: Sequence[str], wire: Wire
) -> tuple[bytes, dict[str, str]]:
    """The body of ``POST .../infer`` for one batch, and the headers it needs."""
    described: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array in inputs.items():
        entry: dict[str, Any] = {
            "name": name,
            "shape": list(array.shape),
            "datatype": from_numpy(array.dtype),
        }
        if wire == "binary":
            chunk = _tensor_bytes(array)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = _json_data(array)
        described.append(entry)
    binary = {"binary_data": True} if wire == "binary" else {}
    requested = [{"name": name, "parameters": binary} for name in outputs]
    header = orjson.dumps({"inputs": described, "outputs": requested})
    if wire == "json":
        return header, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", BINARY_HEADER: str(len(header))}
    return b"".join([header, *chunks]), headers


def decode_response(body: bytes, headers: Mapping[str, str]) -> dict[str, Array]:
    """The outputs of an upstream's answer, by name."""
    length_text = headers.get(BINARY_HEADER)
    length = len(body)
    if length_text is not None:
        if not length_text.isdigit() or int(length_text) > len(body):
            raise WireError(f"bad Inference-Header-Content-Length {length_text[:20]!r}")
        length = int(length_text)
    try:
        document = orjson.loads(body[:length])
        described = document["outputs"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise WireError(f"the answer is not an inference response ({exc})") from None
    view = memoryview(body)[length:]
    offset = 0
    outputs: dict[str, Array] = {}
    for entry in described:
        try:
            name, datatype = str(entry["name"]), str(entry["datatype"])
            shape = tuple(int(d) for d in entry["shape"])
            dtype = to_numpy(datatype)
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"an output is not described properly ({exc})") from None
        size = (entry.get("parameters") or {}).get("binary_data_size")
        if size is None:
            outputs[name] = _from_json(name, entry.get("data"), dtype, shape)
            continue
        if type(size) is not int or size < 0 or offset + size > len(view):
            raise WireError(f"output '{name}': binary_data_size {size!r} runs past the body")
        outputs[name] = _from_bytes(name, view[offset : offset + size], dtype, shape)
        offset += size
    return outputs


def _from_json(name: str, data: Any, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Array:
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise WireError(f"output '{name}': data does not hold {math.prod(shape)} values")
    return np.array(data, dtype=dtype).reshape(shape)


def _from_bytes(
    name: str, chunk: memoryview, dtype: np.dtype[Any], shape: tuple[int, ...]
) -> Array:
    count = math.prod(shape)
    if dtype.kind != "O":
        if len(chunk) != count * dtype.itemsize:
            raise WireError(f"output '{name}': {len(chunk)} bytes for shape {list(shape)}")
        return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    items: list[str] = []
    offset = 0
    for _ in range(count):
        if offset + _PREFIX.size > len(chunk):
            raise WireError(f"output '{name}': BYTES data ends early")
        (size,) = _PREFIX.unpack_from(chunk, offset)
        offset += _PREFIX.size
        items.append(str(chunk[offset : offset + size], "utf-8", "replace"))
        offset += size
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)


def signature_from_metadata(document: Any) -> ModelSignature:
    """A model's signature from its protocol metadata (``GET /v2/models/<m>``)."""
    try:
        return ModelSignature(
            inputs=tuple(_spec(entry) for entry in document["inputs"]),
            outputs=tuple(_spec(entry) for entry in document["outputs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"the model metadata is not the protocol's ({exc})") from None


def _spec(entry: Any) -> TensorSpec:
    shape = tuple(None if int(dim) < 0 else int(dim) for dim in entry["shape"])
    return TensorSpec(name=str(entry["name"]), dtype=to_numpy(str(entry["datatype"])), shape=shape)
