"""A fake Backend (echoes, records batch sizes, holds a batch, fails on demand) and a loader."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from backends.base import Array, ModelSignature, RuntimeOptions, TensorSpec
from backends.errors import InferenceError

FP32 = np.dtype(np.float32)


def echo_signature(width: int | None = 4, batch: bool = True) -> ModelSignature:
    """Input ``x`` [batch, width] FP32; outputs ``y`` (= x) and ``total`` (row sums)."""
    first = None if batch else 1
    return ModelSignature(
        inputs=(TensorSpec("x", FP32, (first, width), ("batch", None)),),
        outputs=(
            TensorSpec("y", FP32, (first, width), ("batch", None)),
            TensorSpec("total", FP32, (first,), ("batch",)),
        ),
    )


class FakeBackend:
    """Implements ``backends.base.Backend`` in memory.

    ``batches`` records the inputs of every call; ``hold`` (when set) makes each call wait
    for ``release``; ``fail_when`` decides from a batch whether the call raises, and
    ``fail_next`` queues exceptions for the next calls to raise, one per call, whatever the inputs.
    """

    def __init__(self, signature: ModelSignature | None = None) -> None:
        self._signature = signature or echo_signature()
        self.batches: list[Array] = []
        self.hold = False
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_when: list[float] = []
        self.fail_next: list[Exception] = []
        self.closed = False

    @property
    def signature(self) -> ModelSignature:
        """The echo model's signature."""
        return self._signature

    @property
    def metadata(self) -> Mapping[str, str]:
        """Nothing but the platform name."""
        return {"platform": "fake"}

    @property
    def batch_sizes(self) -> list[int]:
        """Rows of every call so far."""
        return [len(batch) for batch in self.batches]

    async def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> dict[str, Array]:
        """Echo ``x`` as ``y`` and its row sums as ``total``."""
        x = inputs["x"]
        self.batches.append(x.copy())
        self.started.set()
        if self.hold:
            await self.release.wait()
        if self.fail_next:
            raise self.fail_next.pop(0)
        if any(np.isin(self.fail_when, x).tolist()):
            raise InferenceError("the fake runtime failed on purpose", kind="Fail")
        outputs = {"y": x.copy(), "total": x.sum(axis=tuple(range(1, x.ndim)))}
        names = output_names or list(outputs)
        return {name: outputs[name] for name in names}

    async def close(self) -> None:
        """Mark closed."""
        self.closed = True


class FakeLoader:
    """A ``BackendLoader`` that makes a FakeBackend for every model version and keeps the
    latest by model name (``backends``) and by (name, version) (``by_version``);
    ``loads`` lists every load in order."""

    def __init__(self, signature: ModelSignature | None = None) -> None:
        self.signature = signature
        self.backends: dict[str, FakeBackend] = {}
        self.by_version: dict[tuple[str, int], FakeBackend] = {}
        self.loads: list[tuple[str, int]] = []

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> FakeBackend:
        """Load the model file at ``<repository>/<name>/<version>/model.onnx`` (never read)."""
        backend = FakeBackend(self.signature)
        name = path.parent.parent.name
        version = int(path.parent.name) if path.parent.name.isdigit() else 0
        self.backends[name] = backend
        self.by_version[(name, version)] = backend
        self.loads.append((name, version))
        return backend
