"""One tensor's JSON array text decoded in slices, giving the event loop back between them.

The text is cut at commas into slices of about ``slice_bytes``; each is parsed with
orjson and converted with numpy into its place in a preallocated array, then the loop
runs whatever else is ready. The array's bracket and comma skeleton is compared with the
one its shape implies, and a slice holding anything but numbers ends the attempt: the
caller then runs the exact codec, so every error message stays the exact codec's.

Exactness: a slice's values convert the way the exact codec converts its leaves (floats
through a double, integers through an int64, both range-checked), and any value the exact
codec would treat specially (out of range, beyond a double, an integer literal of 19
digits or more) ends the attempt.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from backends.base import Array

# Bytes a number may hold (with the whitespace around it), by dtype kind: what is left
# once they are deleted is the skeleton, which must be only brackets and commas.
_FLOAT_BYTES = b"0123456789-+.eE \t\n\r"
_INTEGER_BYTES = b"0123456789- \t\n\r"
_SKELETON_BYTES = b",[]"
# Brackets become spaces: a slice then parses as a flat list of its numbers, and two
# numbers that only a bracket separated run together and fail to parse.
_BRACKETS_AS_SPACES = bytes.maketrans(b"[]", b"  ")
_LONG_INTEGER = re.compile(rb"[0-9]{19}")
_FLOAT_LIMITS = {size: float(np.finfo(f"f{size}").max) for size in (2, 4, 8)}


class Abandoned(Exception):
    """The decode stopped because ``abandoned()`` said so (its client left)."""


def _never() -> bool:
    return False


def skeleton(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a JSON array nested to ``shape`` (no dimension 0)."""
    text = b""
    for dim in reversed(shape):
        # The innermost level is commas alone: repeated, not joined from a list of
        # millions of empty strings (a flat tensor of 1.5M numbers took 50 ms that way).
        text = b"[" + (b"," * (dim - 1) if not text else b",".join([text] * dim)) + b"]"
    return text


def _values(piece: bytes, dtype: np.dtype[Any]) -> Array | None:
    """A slice's numbers as a flat array (a double array for float dtypes), or None when
    the exact codec must decide."""
    values = orjson.loads(b"".join((b"[", piece.translate(_BRACKETS_AS_SPACES), b"]")))
    if dtype.kind == "f":
        wide = np.array(values, dtype=np.float64)
        # Beyond the dtype's range (or a literal beyond a double, which orjson refused):
        # allowed or not per model, and the exact codec says which.
        if wide.size and not float(np.abs(wide).max()) <= _FLOAT_LIMITS[dtype.itemsize]:
            return None
        return wide
    # orjson reads integers past 64 bits as floats, which numpy would truncate: a literal
    # of 19 digits or more (rare) is left to the exact codec; all others fit an int64.
    if _LONG_INTEGER.search(piece):
        return None
    found = np.array(values, dtype=np.int64)
    if found.size:
        info = np.iinfo(dtype)
        if int(found.min()) < info.min or int(found.max()) > info.max:
            return None
    return found


async def decode_sliced(
    body: bytes,
    span: tuple[int, int],
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    *,
    slice_bytes: int,
    abandoned: Callable[[], bool] = _never,
) -> Array | None:
    """The numeric tensor whose JSON array is ``body[start:end]``, of ``shape`` and
    ``dtype``, nested to the shape or flat; None when the text is anything else (the
    exact codec then decides). Raises ``Abandoned`` as soon as ``abandoned()`` is true,
    checked before each slice."""
    start, end = span
    count = math.prod(shape)
    # Each number takes a byte and a comma at least; a dimension of 0 takes the exact path.
    if dtype.kind not in "fiu" or count == 0 or 2 * count + 1 > end - start:
        return None
    numeric = _FLOAT_BYTES if dtype.kind == "f" else _INTEGER_BYTES
    out = np.empty(count, dtype=dtype)
    found: list[bytes] = []
    filled = 0
    while start < end:
        if abandoned():
            raise Abandoned
        stop = body.find(b",", start + slice_bytes, end)
        if stop < 0:
            stop = end
        piece = body[start:stop]
        structure = piece.translate(None, numeric)
        if structure.translate(None, _SKELETON_BYTES):
            return None  # anything but a number: strings, booleans, null, NaN, objects
        try:
            values = _values(piece, dtype)
        except (orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
            return None
        if values is None or filled + values.size > count:
            return None
        out[filled : filled + values.size] = values
        filled += values.size
        found.append(structure)
        found.append(b"," if stop < end else b"")
        start = stop + 1
        await asyncio.sleep(0)  # the loop runs whatever else is ready
    if filled != count:
        return None
    text = b"".join(found)
    if text != skeleton(shape) and text != skeleton((count,)):
        return None
    return out.reshape(shape)
