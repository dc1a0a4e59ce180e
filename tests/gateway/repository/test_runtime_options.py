"""Model config -> ONNX Runtime session options, loaded for real on a demo model."""

from __future__ import annotations

import asyncio

import numpy as np

from backends.onnxruntime import OnnxRuntimeBackend
from gateway.repository.config import parse_model_config
from support.paths import DEMO_MODELS

DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"


def test_spinning_is_off_unless_asked_for() -> None:
    quiet = parse_model_config({}, "test").runtime_options()
    assert quiet.extra == {"session.intra_op.allow_spinning": "0"}
    busy = parse_model_config({"allow_spinning": True}, "test").runtime_options()
    assert busy.extra == {"session.intra_op.allow_spinning": "1"}


def test_session_config_entries_reach_onnx_runtime() -> None:
    options = parse_model_config({"intra_op_threads": 1}, "test").runtime_options()
    backend = OnnxRuntimeBackend.load(DIGITS, options, "digits version 1")

    async def infer() -> dict[str, np.ndarray]:
        try:
            return await backend.infer({"pixels": np.zeros((3, 64), np.float32)})
        finally:
            await backend.close()

    outputs = asyncio.run(infer())
    assert outputs["label"].shape == (3,)
