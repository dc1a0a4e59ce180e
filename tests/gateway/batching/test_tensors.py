"""Merging requests on the batch axis and splitting results back, without asyncio."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gateway.batching.tensors import (
    batch_rows,
    concatenate,
    cut_to_preferred,
    join_rows,
    shape_key,
    split,
    split_rows,
)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=8))
def test_split_undoes_concatenate(sizes: list[int]) -> None:
    parts = [{"x": np.full((n, 3), i, dtype=np.float32)} for i, n in enumerate(sizes)]
    merged = concatenate(parts)
    assert merged["x"].shape == (sum(sizes), 3)
    pieces = split(merged, sizes)
    assert len(pieces) == len(sizes)
    for part, piece in zip(parts, pieces, strict=True):
        np.testing.assert_array_equal(piece["x"], part["x"])


def test_outputs_without_batch_axis_go_whole_to_every_request() -> None:
    pieces = split({"y": np.arange(5), "scale": np.array(7)}, [2, 3])
    assert [p["y"].tolist() for p in pieces] == [[0, 1], [2, 3, 4]]
    assert [int(p["scale"]) for p in pieces] == [7, 7]


def test_shape_key_separates_non_batch_shapes_and_dtypes() -> None:
    a = {"x": np.zeros((1, 4), np.float32)}
    b = {"x": np.zeros((5, 4), np.float32)}
    assert shape_key(a) == shape_key(b)
    assert shape_key(a) != shape_key({"x": np.zeros((1, 5), np.float32)})
    assert shape_key(a) != shape_key({"x": np.zeros((1, 4), np.float64)})


def test_batch_rows() -> None:
    assert batch_rows({"x": np.zeros((3, 2))}) == 3
    assert batch_rows({"x": np.array(1.0, np.float32)}) == 1
    assert batch_rows({}) == 0


def test_cut_to_preferred() -> None:
    assert cut_to_preferred([1, 1, 1], [], 8) == 3
    assert cut_to_preferred([1, 1, 1], [2, 4], 8) == 2
    assert cut_to_preferred([2, 2, 1], [4], 8) == 2
    assert cut_to_preferred([3, 3], [2], 8) == 2  # no whole-request prefix makes 2
    assert cut_to_preferred([4, 4], [2], 8) == 2  # full batches are never cut
    assert cut_to_preferred([1, 3], [4], 8) == 2


@given(rows=st.integers(min_value=1, max_value=40), limit=st.integers(min_value=1, max_value=9))
def test_join_rows_undoes_split_rows(rows: int, limit: int) -> None:
    inputs = {"x": np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)}
    parts = split_rows(inputs, limit)
    assert all(1 <= len(p["x"]) <= limit for p in parts)
    joined = join_rows([{**p, "scale": np.array(3.0)} for p in parts])
    np.testing.assert_array_equal(joined["x"], inputs["x"])
    assert float(joined["scale"]) == 3.0
