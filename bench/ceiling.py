"""Raw in-process ONNX Runtime: the ceiling no server can beat at a given batch size."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class CeilingResult:
    """Rows per second and call latency when running ``batch`` rows per call."""

    batch: int
    rows_per_s: float
    p50_ms: float
    p99_ms: float


def measure(
    model: Path, batch: int, seconds: float, provider: str = "CPUExecutionProvider"
) -> CeilingResult:
    """Run ``batch`` random rows per call for about ``seconds`` (after a short warm-up)."""
    session = ort.InferenceSession(str(model), providers=[provider])
    spec = session.get_inputs()[0]
    width = int(spec.shape[1])
    rows = np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32)
    feed = {spec.name: rows}
    for _ in range(5):
        session.run(None, feed)
    durations: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        session.run(None, feed)
        durations.append(time.perf_counter() - started)
    ordered = sorted(durations)
    return CeilingResult(
        batch=batch,
        rows_per_s=batch * len(durations) / sum(durations),
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    )
