"""The CUDA execution provider for real: runs only where onnxruntime-gpu finds a GPU
(scripts/gpu_check.sh on a GPU machine); skipped everywhere else, the CPU-only machines
of `make test` included. The CPU-side logic is tested with stand-ins in
test_execution_providers.py."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from backends.onnxruntime import OnnxRuntimeBackend
from gateway.repository.config import ModelConfig
from support.paths import DEMO_MODELS

CUDA = "CUDAExecutionProvider"
MLP = DEMO_MODELS / "mlp" / "1" / "model.onnx"

pytestmark = pytest.mark.skipif(
    CUDA not in ort.get_available_providers(), reason="needs onnxruntime-gpu and a GPU"
)


def load(config: dict[str, object]) -> OnnxRuntimeBackend:
    options = ModelConfig.model_validate(config).runtime_options("mlp")
    return OnnxRuntimeBackend.load(MLP, options, "mlp")


async def test_cuda_runs_the_model_and_agrees_with_the_cpu() -> None:
    gpu = load({"execution_providers": ["cuda"], "when_provider_unavailable": "fail"})
    cpu = load({"execution_providers": ["cpu"]})
    assert gpu.metadata["execution_provider"] == CUDA
    assert gpu.metadata["device_id"] == "0"
    batch = np.random.default_rng(0).uniform(0, 1, (64, 256)).astype(np.float32)
    on_gpu, on_cpu = await gpu.infer({"input": batch}), await cpu.infer({"input": batch})
    gpu_logits = np.asarray(on_gpu["logits"], dtype=np.float32)
    cpu_logits = np.asarray(on_cpu["logits"], dtype=np.float32)
    np.testing.assert_allclose(gpu_logits, cpu_logits, rtol=1e-3, atol=1e-4)
    await gpu.close()
    await cpu.close()


async def test_io_binding_and_a_memory_limit_on_cuda() -> None:
    gpu = load(
        {
            "execution_providers": ["cuda"],
            "when_provider_unavailable": "fail",
            "cuda": {
                "io_binding": True,
                "memory_limit_mb": 512,
                "cudnn_conv_algo_search": "heuristic",
            },
        }
    )
    batch = np.ones((8, 256), np.float32)
    outputs = await gpu.infer({"input": batch})
    assert outputs["logits"].shape == (8, 10)
    await gpu.close()
