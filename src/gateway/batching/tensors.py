"""Pure functions that merge requests' tensors on the batch axis and split results back."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from backends.base import Array

ShapeKey = Hashable
"""What must be equal for two requests to share a batch: names, dtypes, non-batch dims."""


def batch_rows(inputs: Mapping[str, Array]) -> int:
    """Rows on the batch axis (axis 0) of a request's inputs; 1 for scalar inputs."""
    for array in inputs.values():
        return int(array.shape[0]) if array.ndim else 1
    return 0


def shape_key(inputs: Mapping[str, Array]) -> ShapeKey:
    """Requests with equal keys can be concatenated on axis 0 (and only those)."""
    return tuple((name, array.dtype.str, array.shape[1:]) for name, array in inputs.items())


def concatenate(parts: Sequence[Mapping[str, Array]]) -> dict[str, Array]:
    """Stack the requests' inputs on the batch axis, in order; one part is passed through."""
    if len(parts) == 1:
        return dict(parts[0])
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}


def split(outputs: Mapping[str, Array], sizes: Sequence[int]) -> list[dict[str, Array]]:
    """Cut each batched output back into one slice per request, ``sizes`` rows each.

    An output whose first dimension is not the batch total (a per-batch value) is given
    whole to every request, as Triton does for outputs without a batch dimension.
    """
    total = sum(sizes)
    if len(sizes) == 1:
        return [dict(outputs)]
    pieces: list[dict[str, Array]] = [{} for _ in sizes]
    for name, array in outputs.items():
        batched = array.ndim > 0 and array.shape[0] == total
        start = 0
        for piece, size in zip(pieces, sizes, strict=True):
            piece[name] = array[start : start + size] if batched else array
            start += size
    return pieces


def cut_to_preferred(sizes: Sequence[int], preferred: Sequence[int], limit: int) -> int:
    """How many of the leading requests (``sizes`` rows each) to run as one batch.

    All of them when they fill ``limit`` or no preferred size fits; otherwise as many as
    reach the largest preferred batch size that whole requests can make exactly.
    """
    total = sum(sizes)
    if not preferred or total >= limit or total in preferred:
        return len(sizes)
    best, rows = 0, 0
    for count, size in enumerate(sizes, start=1):
        rows += size
        if rows in preferred:
            best = count
    return best or len(sizes)


def split_rows(inputs: Mapping[str, Array], limit: int) -> list[dict[str, Array]]:
    """Cut an oversized request into consecutive parts of at most ``limit`` rows."""
    rows = batch_rows(inputs)
    return [
        {name: array[start : start + limit] for name, array in inputs.items()}
        for start in range(0, rows, limit)
    ]


def join_rows(parts: Sequence[Mapping[str, Array]]) -> dict[str, Array]:
    """Undo ``split_rows`` on the outputs: concatenate batched outputs, keep the rest."""
    if len(parts) == 1:
        return dict(parts[0])
    joined: dict[str, Array] = {}
    for name, first in parts[0].items():
        if first.ndim == 0:
            joined[name] = first
        else:
            joined[name] = np.concatenate([part[name] for part in parts], axis=0)
    return joined
