"""``classify``: Triton's top-k strings, and a labels file that cannot be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.protocol.classification import classify
from gateway.repository.config import ConfigError, load_model_config


def test_float_scores_have_six_decimals_and_ties_keep_the_lower_index() -> None:
    array = np.array([[0.25, 0.5, 0.25], [0.1, 0.2, 0.7]], dtype=np.float32)
    assert classify(array, 2).tolist() == [
        ["0.500000:1", "0.250000:0"],
        ["0.700000:2", "0.200000:1"],
    ]


def test_integer_scores_are_integers_and_a_1d_output_gives_k() -> None:
    array = np.array([3, -1, 9], dtype=np.int64)
    result = classify(array, 5, ["a", "b"])
    assert result.shape == (3,)
    assert result.tolist() == ["9:2", "3:0:a", "-1:1:b"]


def test_a_labels_file_that_cannot_be_read_fails_the_load(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("labels: {probabilities: missing.txt}\n")
    with pytest.raises(ConfigError, match="labels of output 'probabilities'"):
        load_model_config(tmp_path)
