"""Tensor codec: JSON request bodies into numpy arrays checked against a signature, and back.

Decoding walks the nested lists once to check structure and element types (strict: no
string or boolean is ever coerced into a number), then makes one numpy conversion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from backends.base import Array, ModelSignature, TensorSpec
from backends.datatypes import DATATYPES, from_numpy, to_numpy
from gateway.errors import InvalidInput, PayloadTooLarge
from gateway.protocol.wire import MAX_DIMENSION, MAX_RANK, RequestInput

_JSON_TYPE_NAMES: dict[type, str] = {
    float: "number",
    int: "integer",
    bool: "boolean",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}
_NUMBER_TYPES = frozenset({float, int})
# The largest finite magnitude of each float width, by item size in bytes.
_FLOAT_LIMITS = {size: float(np.finfo(f"f{size}").max) for size in (2, 4, 8)}
_INTEGER_TYPES = frozenset({int})


_LONE_SURROGATE = (
    "request body holds a lone UTF-16 surrogate escape (such as \\ud800) in a string; "
    "JSON strings must be Unicode text, so escape a character above U+FFFF as a pair"
)
# A surrogate escape in the body (valid pairs included): only then can a string hold one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DOUBLE_MAX = float(np.finfo(np.float64).max)


class _Lenient:
    """The stdlib parser with hooks noting what orjson refused: non-finite numbers, and
    integers no double can hold (orjson reads those past 64 bits as doubles, as here)."""

    def __init__(self) -> None:
        self.non_finite = False
        self.huge_integer = False

    def constant(self, literal: str) -> float:
        self.non_finite = True
        return float(literal)

    def number(self, literal: str) -> float:
        value = float(literal)
        self.non_finite = self.non_finite or math.isinf(value)
        return value

    def integer(self, literal: str) -> int | float:
        if len(literal) <= 20:  # int() of a few digits only: 4,300 of them raise
            value = int(literal)
            if -(2**63) <= value < 2**64:
                return value
        wide = float(literal)
        self.huge_integer = self.huge_integer or wide > _DOUBLE_MAX or wide < -_DOUBLE_MAX
        return wide

    def loads(self, body: bytes) -> Any:
        return json.loads(
            body, parse_constant=self.constant, parse_float=self.number, parse_int=self.integer
        )


def _holds_lone_surrogate(document: Any) -> bool:
    """True when a key or string anywhere in ``document`` holds a surrogate code point (the
    stdlib joins valid pairs, so any left is lone)."""
    stack = [document]
    while stack:
        item = stack.pop()
        if type(item) is str:
            if _SURROGATE.search(item):
                return True
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item)
            stack.extend(item.values())
    return False


def parse_json(body: bytes, *, allow_non_finite: bool) -> Any:
    """Parse a request body with orjson; NaN/Infinity literals only when allowed.

    Where orjson refuses a body, the stdlib parser says why: a non-finite number (allowed
    per model), an integer beyond a double, or a lone surrogate. No string holding a lone
    surrogate ever comes back: no encoder or log line could write it (issue 10, item 10).
    """
    if not body:
        raise InvalidInput("request body is empty; expected a JSON inference request")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
    if "not valid UTF-8" in reason:  # orjson blames surrogates for any bad byte
        raise InvalidInput("request body is not valid JSON: it is not UTF-8 text")
    if "surrogate" in reason:
        raise InvalidInput(_LONE_SURROGATE)
    lenient = _Lenient()
    try:
        document = lenient.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput(f"request body is not valid JSON: {reason}") from None
    if _SURROGATE_ESCAPE.search(body) and _holds_lone_surrogate(document):
        raise InvalidInput(_LONE_SURROGATE)
    if lenient.huge_integer:
        raise InvalidInput(
            "request body has an integer literal beyond the range of a double (about "
            "1.8e308); no tensor datatype holds it"
        )
    if allow_non_finite:
        return document
    raise InvalidInput(
        "request body contains a non-finite number (NaN, Infinity or a value beyond a "
        "double); this model does not accept non-finite values (allow_non_finite in its config)"
    )


def format_shape(shape: Sequence[int | None]) -> str:
    """Render a shape the way the protocol does: dynamic dimensions as -1."""
    return "[" + ", ".join("-1" if dim is None else str(dim) for dim in shape) + "]"


def _json_type(value_type: type) -> str:
    return _JSON_TYPE_NAMES.get(value_type, value_type.__name__)


def _check_shape(inp: RequestInput, spec: TensorSpec) -> tuple[int, ...]:
    shape = inp.shape
    if len(shape) > MAX_RANK:  # before quoting the shape in any message
        raise InvalidInput(
            f"input '{inp.name}': shape of rank {len(shape)} is absurd (rank <= {MAX_RANK} "
            "expected)"
        )
    if shape and min(shape) < 0:
        raise InvalidInput(f"input '{inp.name}': shape {shape} has a negative dimension")
    if shape and max(shape) > MAX_DIMENSION:
        raise InvalidInput(
            f"input '{inp.name}': shape {shape} is absurd (rank <= {MAX_RANK} and "
            f"dimensions <= {MAX_DIMENSION} expected)"
        )
    if len(shape) != spec.rank:
        raise InvalidInput(
            f"input '{inp.name}': shape {shape} has rank {len(shape)}; the model expects "
            f"rank {spec.rank} (shape {format_shape(spec.shape)})"
        )
    for axis, (got, want) in enumerate(zip(shape, spec.shape, strict=True)):
        if want is not None and got != want:
            raise InvalidInput(
                f"input '{inp.name}': dimension {axis} is {got}; the model expects {want} "
                f"(shape {format_shape(spec.shape)})"
            )
    return tuple(shape)


def _flatten(name: str, data: list[Any], shape: tuple[int, ...]) -> list[Any]:
    """Flat list of leaves; nested data must match ``shape`` exactly at every level."""
    count = math.prod(shape)
    if not data or type(data[0]) is not list:
        if len(data) != count:
            raise InvalidInput(
                f"input '{name}': data has {len(data)} elements; shape {list(shape)} needs {count}"
            )
        return data
    level: list[Any] = [data]
    for axis, dim in enumerate(shape):
        below: list[Any] = []
        for item in level:
            if type(item) is not list or len(item) != dim:
                got = f"length {len(item)}" if type(item) is list else _json_type(type(item))
                raise InvalidInput(
                    f"input '{name}': nested data does not match shape {list(shape)}: "
                    f"expected {dim} elements at depth {axis}, got {got}"
                )
            below.extend(item)
        level = below
    return level


def _check_element_types(inp: RequestInput, leaves: list[Any], dtype: np.dtype[Any]) -> None:
    found = set(map(type, leaves))
    if dtype.kind == "f":
        allowed, wanted = _NUMBER_TYPES, "numbers"
    elif dtype.kind in "iu":
        allowed, wanted = _INTEGER_TYPES, "integers"
    elif dtype.kind == "b":
        allowed, wanted = frozenset({bool}), "true/false"
    else:
        allowed, wanted = frozenset({str}), "strings"
    wrong = found - allowed
    if wrong:
        got = ", ".join(sorted(_json_type(t) for t in wrong))
        raise InvalidInput(f"input '{inp.name}': {inp.datatype} data must be {wanted}; got {got}")


def _to_array(
    inp: RequestInput, leaves: list[Any], spec: TensorSpec, allow_non_finite: bool
) -> Array:
    dtype = spec.dtype
    try:
        if dtype.kind == "f":
            return _to_float_array(inp, leaves, dtype, allow_non_finite)
        return np.array(leaves, dtype=dtype)
    except OverflowError:
        raise InvalidInput(
            f"input '{inp.name}': a value is out of range for {inp.datatype}"
        ) from None


def _to_float_array(
    inp: RequestInput, leaves: list[Any], dtype: np.dtype[Any], allow_non_finite: bool
) -> Array:
    """Floats through a double, which every JSON number that parsed fits (bigger integers
    raise OverflowError), so that narrowing is checked before it happens: numpy's own
    overflow check (``np.errstate``) cost more than the conversion in a server."""
    wide = np.array(leaves, dtype=np.float64)
    if wide.size == 0:
        return wide.astype(dtype, copy=False)
    largest = float(np.abs(wide).max())  # NaN when any element is NaN
    if largest <= _FLOAT_LIMITS[dtype.itemsize]:
        return wide.astype(dtype, copy=False)
    if not allow_non_finite:
        raise InvalidInput(
            f"input '{inp.name}': values must be finite and within {inp.datatype} range "
            "(allow_non_finite is off for this model)"
        )
    with np.errstate(over="ignore"):  # out of range becomes infinity, as allowed
        return wide.astype(dtype, copy=False)


def check_declaration(
    inp: RequestInput, spec: TensorSpec, max_rows: int | None = None
) -> tuple[int, ...]:
    """The declared shape of a request input, once its datatype and shape fit ``spec``
    and its batch axis is within ``max_rows`` (checked before any of its data is read)."""
    if inp.datatype not in DATATYPES:
        raise InvalidInput(
            f"input '{inp.name}': unknown datatype '{inp.datatype}'; expected one of "
            + ", ".join(DATATYPES)
        )
    expected = from_numpy(spec.dtype)
    if inp.datatype != expected:
        raise InvalidInput(
            f"input '{inp.name}': datatype {inp.datatype} does not match the model, which "
            f"expects {expected}"
        )
    shape = _check_shape(inp, spec)
    if shape:
        _check_rows(f"input '{inp.name}'", shape[0], max_rows)
    return shape


def decode_tensor(
    inp: RequestInput, spec: TensorSpec, *, allow_non_finite: bool, max_rows: int | None = None
) -> Array:
    """One request input as a numpy array of the spec's dtype and the declared shape;
    ``max_rows`` bounds its batch axis, checked on the declared shape before the data."""
    shape = check_declaration(inp, spec, max_rows)
    if type(inp.data) is not list:
        raise InvalidInput(
            f"input '{inp.name}': data must be a JSON array, got {_json_type(type(inp.data))}"
        )
    leaves = _flatten(inp.name, inp.data, shape)
    _check_element_types(inp, leaves, to_numpy(inp.datatype))
    return _to_array(inp, leaves, spec, allow_non_finite).reshape(shape)


def _input_names(signature: ModelSignature) -> str:
    return ", ".join(spec.name for spec in signature.inputs)


def check_names(inputs: Sequence[RequestInput], signature: ModelSignature) -> None:
    seen: set[str] = set()
    for inp in inputs:
        if inp.name in seen:
            raise InvalidInput(f"input '{inp.name}' is given more than once")
        seen.add(inp.name)
        if signature.input(inp.name) is None:
            raise InvalidInput(
                f"unknown input '{inp.name}'; the model's inputs are: {_input_names(signature)}"
            )
    for spec in signature.inputs:
        if spec.name not in seen and not spec.optional:
            raise InvalidInput(
                f"missing input '{spec.name}' ({from_numpy(spec.dtype)}, shape "
                f"{format_shape(spec.shape)}); the model's inputs are: {_input_names(signature)}"
            )


def check_shared_dimensions(arrays: Mapping[str, Array], signature: ModelSignature) -> None:
    """Inputs sharing a symbolic dimension (such as ``batch``) must agree on its size."""
    sizes: dict[str, tuple[str, int]] = {}
    for spec in signature.inputs:
        if spec.optional and spec.name not in arrays:  # left out
            continue
        shape = arrays[spec.name].shape
        for dim_name, size in zip(spec.dim_names, shape, strict=False):
            if dim_name is None:
                continue
            first = sizes.setdefault(dim_name, (spec.name, size))
            if first[1] != size:
                raise InvalidInput(
                    f"inputs '{first[0]}' and '{spec.name}' disagree on dimension "
                    f"'{dim_name}': {first[1]} vs {size}"
                )


def _check_rows(what: str, rows: int, max_rows: int | None) -> None:
    """Refuse a request with more rows than its model can ever take in one request;
    ``what`` names what has them (``input 'x'``)."""
    if max_rows is not None and rows > max_rows:
        raise PayloadTooLarge(
            f"{what} has {rows} rows; this model takes at most {max_rows} rows in one "
            "request (max_queue_size x max_batch_size: more could never be queued); send "
            "them in several requests"
        )


def decode_inputs(
    inputs: Sequence[RequestInput],
    signature: ModelSignature,
    *,
    allow_non_finite: bool,
    max_rows: int | None = None,
) -> dict[str, Array]:
    """All request inputs as arrays, after checking names, types and shapes; ``max_rows``
    bounds the batch axis, checked from the declared shapes before any data is read."""
    check_names(inputs, signature)
    arrays = {
        inp.name: decode_tensor(inp, spec, allow_non_finite=allow_non_finite, max_rows=max_rows)
        for inp in inputs
        if (spec := signature.input(inp.name)) is not None
    }
    check_shared_dimensions(arrays, signature)
    return arrays


def _as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def bytes_as_text(array: Array) -> Array:
    """A BYTES tensor as JSON can carry it: an object array of the same shape holding
    ``str`` (bytes decoded as UTF-8, undecodable bytes replaced)."""
    flat = [_as_text(value) for value in array.ravel().tolist()]
    text = np.empty(len(flat), dtype=object)
    text[:] = flat
    return text.reshape(array.shape)


def encode_tensor(name: str, array: Array) -> dict[str, Any]:
    """A response output; numeric data stays a numpy array for orjson to serialise."""
    datatype = from_numpy(array.dtype)
    if datatype == "BYTES":
        data: Any = bytes_as_text(array).ravel().tolist()
    else:
        data = np.ascontiguousarray(array).ravel()
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def dumps(document: Any) -> bytes:
    """Serialise a response document, numpy arrays included."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
