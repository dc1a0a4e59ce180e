"""Where a JSON request body's large tensor ``data`` arrays lie, cut out for slicing.

A body's ``"data": [...]`` arrays of numbers are found with C-speed byte searches (no
Python loop per byte) and replaced by small markers, so that the rest of the body (the
envelope) parses and validates through the exact codec, while each array's text is
decoded in slices (``gateway.protocol.sliced_tensor``). A marker holds a random nonce:
no client can forge one, so a marker found in an input's ``data`` is one cut out here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

# The key and the array's opening bracket; the array itself is found from there.
_DATA_KEY = re.compile(rb'"data"\s*:\s*\[')
_KEY = b'"data"'


@dataclass(frozen=True, slots=True)
class CutBody:
    """A body with its large ``data`` arrays replaced by markers."""

    envelope: bytes
    """The body with each array replaced by its marker: small, parsed the exact way."""
    spans: list[tuple[int, int]]
    """Where each array lies in the original body (start, end), by marker index."""
    nonce: str
    """What the markers hold, so that :meth:`span_of` recognises them."""

    def span_of(self, data: Any) -> int | None:
        """The index of the array a parsed ``data`` value stands for, or None when it is
        not a marker (a small array left in place)."""
        if type(data) is list and len(data) == 2 and data[0] == self.nonce:
            index = data[1]
            if type(index) is int and 0 <= index < len(self.spans):
                return index
        return None


def find_data_arrays(body: bytes, min_bytes: int, most: int) -> list[tuple[int, int]] | None:
    """The (start, end) of each ``"data"`` array of at least ``min_bytes`` in ``body``,
    in order; None when more than ``most`` ``"data"`` keys would have to be looked at.

    An array of numbers holds no ``"`` and no ``}``: its text runs from its ``[`` to the
    last ``]`` before the next of those. That is only a guess at its end (a string or an
    object inside the array stops it early); the slicing decoder checks the array's
    whole bracket structure, and anything irregular goes to the exact codec.
    """
    spans: list[tuple[int, int]] = []
    position = body.find(_KEY)
    looked = 0
    while position >= 0:
        looked += 1
        if looked > most:
            return None
        match = _DATA_KEY.match(body, position)
        if match is None:
            position = body.find(_KEY, position + 1)
            continue
        start = match.end() - 1
        stop = _next_of(body, start)
        end = body.rfind(b"]", start, stop) + 1
        if end - start >= min_bytes:
            spans.append((start, end))
        position = body.find(_KEY, max(end, start + 1))
    return spans


def _next_of(body: bytes, start: int) -> int:
    """Where the first ``"`` or ``}`` after ``start`` is (the body's end without one)."""
    quote = body.find(b'"', start)
    brace = body.find(b"}", start)
    ends = [found for found in (quote, brace) if found >= 0]
    return min(ends) if ends else len(body)


def cut_arrays(body: bytes, spans: list[tuple[int, int]]) -> CutBody:
    """``body`` with each of ``spans`` replaced by a marker naming its index."""
    nonce = "\x00tensorgate-slice-" + os.urandom(8).hex()
    parts: list[bytes] = []
    previous = 0
    for index, (start, end) in enumerate(spans):
        parts.append(body[previous:start])
        parts.append(b'["\\u0000' + nonce[1:].encode() + b'",' + str(index).encode() + b"]")
        previous = end
    parts.append(body[previous:])
    return CutBody(b"".join(parts), spans, nonce)
