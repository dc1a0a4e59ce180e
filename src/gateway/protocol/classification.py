"""The classification extension, and the request parameters tensorgate implements.

An output requested with ``parameters.classification: k`` is sent as the top ``k``
classes of each batch row instead of the tensor: BYTES strings ``"score:index"``, or
``"score:index:label"`` when the model's config names a labels file for that output.
The score is written as Triton writes it (C++ ``std::to_string``: six decimals for a
floating-point output, the integer for an integer one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backends.base import Array, ModelSignature
from gateway.errors import InvalidInput
from gateway.protocol.wire import InferenceRequest
from gateway.validation import shown

REQUEST_PARAMETERS = frozenset({"timeout", "binary_data_output"})
"""The request-level parameters tensorgate implements."""
_SHARED_MEMORY = {"shared_memory_region", "shared_memory_byte_size", "shared_memory_offset"}
INPUT_PARAMETERS = frozenset({"binary_data_size", *_SHARED_MEMORY})
"""The per-input parameters tensorgate implements."""
OUTPUT_PARAMETERS = frozenset({"binary_data", "classification", *_SHARED_MEMORY})
"""The per-output parameters tensorgate implements."""


def _refuse_unknown(
    parameters: Mapping[str, Any] | None, known: frozenset[str], kind: str, name: str | None = None
) -> None:
    for key in parameters or ():
        if key not in known:
            where = f"{kind} " if name is None else f"{kind} '{shown(name)}': "
            raise InvalidInput(
                f"{where}parameter '{shown(str(key))}' is not supported; the supported "
                f"ones are: {', '.join(sorted(known))}"
            )


def check_parameters(request: InferenceRequest) -> None:
    """Refuse any parameter tensorgate does not implement, naming it: none is ignored."""
    _refuse_unknown(request.parameters, REQUEST_PARAMETERS, "request")
    for inp in request.inputs:
        _refuse_unknown(inp.parameters, INPUT_PARAMETERS, "input", inp.name)
    for out in request.outputs or ():
        _refuse_unknown(out.parameters, OUTPUT_PARAMETERS, "output", out.name)


def class_counts(request: InferenceRequest, signature: ModelSignature) -> dict[str, int]:
    """The outputs asked for as classifications, with their ``k``; a ``k`` that is not a
    positive integer, or one on an output that is not numeric, is refused."""
    counts: dict[str, int] = {}
    for out in request.outputs or ():
        value = (out.parameters or {}).get("classification")
        if value is None:
            continue
        where = f"output '{shown(out.name)}': parameters.classification"
        if type(value) is not int or value < 1:
            raise InvalidInput(f"{where} must be a positive integer, got {shown(repr(value)[:40])}")
        spec = signature.output(out.name)
        if spec is not None and spec.dtype.kind not in "iuf":
            raise InvalidInput(
                f"{where}: the output's datatype is not numeric, so it cannot be classified"
            )
        counts[out.name] = value
    return counts


def classify(array: Array, k: int, labels: Sequence[str] | None = None) -> Array:
    """The top ``k`` classes of each batch row of ``array`` (one row when 1-D), best first
    (ties: the lower index first), as ``[batch, k]`` (or ``[k]``) BYTES strings."""
    rows = array.reshape(1, -1) if array.ndim <= 1 else array.reshape(array.shape[0], -1)
    k = min(k, rows.shape[1])
    order = np.argsort(-rows.astype(np.float64), axis=1, kind="stable")[:, :k]
    result = np.empty(order.shape, dtype=object)
    for r, row in enumerate(order):
        for c, index in enumerate(row.tolist()):
            score = rows[r, index]
            shown_score = f"{int(score)}" if rows.dtype.kind in "iu" else f"{float(score):f}"
            text = f"{shown_score}:{index}"
            if labels is not None and index < len(labels):
                text = f"{text}:{labels[index]}"
            result[r, c] = text
    return result.reshape(k) if array.ndim <= 1 else result
