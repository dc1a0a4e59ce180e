"""The Open Inference Protocol's tensor datatypes and their numpy counterparts: shared by the
gateway (the protocol it serves) and the remote backend (the protocol it calls)."""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
"""Datatypes of the protocol that ONNX Runtime can run (BF16 has no numpy dtype)."""

DATATYPES: tuple[str, ...] = get_args(Datatype)

_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_FROM_NUMPY: dict[np.dtype[Any], str] = {dtype: name for name, dtype in _TO_NUMPY.items()}


def to_numpy(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a protocol datatype; KeyError when unknown."""
    return _TO_NUMPY[datatype]


def from_numpy(dtype: np.dtype[Any]) -> str:
    """The protocol datatype of a numpy dtype (strings and object arrays are BYTES)."""
    if dtype.kind in "OUS":
        return "BYTES"
    return _FROM_NUMPY[dtype]
