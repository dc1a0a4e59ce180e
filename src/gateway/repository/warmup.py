"""Warm-up: a freshly loaded version runs a few batches before it takes traffic, so that
its first requests do not pay for ONNX Runtime's lazy allocations and kernel choices.

Inputs are generated from the signature (random values of each input's type, the batch
axis at each configured size, other dynamic axes at 1) or read from ``.npy`` files.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from backends.base import Array, Backend, ModelSignature, TensorSpec
from gateway.repository.config import WarmupConfig
from gateway.repository.confinement import OutsideModelDirectory, confined_path

logger = logging.getLogger(__name__)

_WORDS = np.array([b"warm", b"up", b""], dtype=object)


class WarmupError(Exception):
    """Warm-up could not run; the message says which input or call failed."""


def _generated(spec: TensorSpec, rows: int, rng: np.random.Generator) -> Array:
    shape = tuple(
        (rows if axis == 0 and spec.has_dynamic_batch else 1) if dim is None else dim
        for axis, dim in enumerate(spec.shape)
    )
    kind = spec.dtype.kind
    if kind == "f":
        return rng.uniform(0, 1, shape).astype(spec.dtype)
    if kind in "iu":
        return rng.integers(0, 2, shape).astype(spec.dtype)
    if kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.choice(_WORDS, shape)  # BYTES: object arrays of bytes


def generated_batches(signature: ModelSignature, config: WarmupConfig) -> list[dict[str, Array]]:
    """One generated input batch per configured batch size (fixed seed)."""
    rng = np.random.default_rng(0)
    return [
        {spec.name: _generated(spec, rows, rng) for spec in signature.inputs}
        for rows in config.batch_sizes
    ]


def file_batch(
    signature: ModelSignature, files: Mapping[str, str], model_dir: Path
) -> dict[str, Array]:
    """The inputs named in ``warmup.inputs``, read from ``.npy`` files and checked against
    the signature (blocking: call it in a thread)."""
    missing = sorted({spec.name for spec in signature.inputs} - set(files))
    unknown = sorted(set(files) - {spec.name for spec in signature.inputs})
    if missing or unknown:
        raise WarmupError(
            f"warmup.inputs must name every input and nothing else: missing {missing}, "
            f"unknown {unknown}"
        )
    batch: dict[str, Array] = {}
    for spec in signature.inputs:
        try:
            path = confined_path(model_dir, files[spec.name], f"warmup.inputs.{spec.name}")
        except OutsideModelDirectory as exc:
            raise WarmupError(str(exc)) from None
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise WarmupError(f"warmup.inputs.{spec.name}: cannot read {path}: {exc}") from None
        fits = array.ndim == len(spec.shape) and all(
            dim is None or dim == size for dim, size in zip(spec.shape, array.shape, strict=True)
        )
        if not fits or array.dtype != spec.dtype:
            raise WarmupError(
                f"warmup.inputs.{spec.name}: {path.name} holds {array.dtype} "
                f"{list(array.shape)}, the input takes {spec.dtype} "
                f"{[-1 if d is None else d for d in spec.shape]}"
            )
        batch[spec.name] = array
    return batch


async def warm_up(backend: Backend, batches: list[dict[str, Array]], runs: int) -> float:
    """Run every batch ``runs`` times on ``backend``; returns the seconds it took."""
    started = time.perf_counter()
    for batch in batches:
        for _ in range(runs):
            try:
                await backend.infer(batch)
            except Exception as exc:
                first = next(iter(batch.values()), None)
                rows = first.shape[0] if first is not None and first.ndim else 1
                raise WarmupError(
                    f"warm-up call with {rows} row(s) failed: {type(exc).__name__}: {exc}"
                ) from None
    return time.perf_counter() - started


async def warm_up_version(
    config: WarmupConfig | None, backend: Backend, model_dir: Path, label: str
) -> None:
    """Run a freshly loaded version's configured warm-up (none: nothing), logging how it
    went; ``WarmupError`` when it failed, and the version must not serve."""
    if config is None or config.runs == 0:
        return
    try:
        if config.inputs:
            batch = await asyncio.to_thread(file_batch, backend.signature, config.inputs, model_dir)
            batches = [batch]
        else:
            batches = generated_batches(backend.signature, config)
        seconds = await warm_up(backend, batches, config.runs)
    except WarmupError as exc:
        logger.error("%s failed its warm-up: %s", label, exc)
        raise
    logger.info(
        "%s warmed up: %d call(s) in %.0f ms", label, len(batches) * config.runs, seconds * 1000
    )
