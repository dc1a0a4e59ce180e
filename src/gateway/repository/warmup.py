"""Warm-up: a freshly loaded version runs a few batches before it takes traffic, so that
its first requests do not pay for ONNX Runtime's lazy allocations and kernel choices.

Inputs are generated from the signature (random values of each input's type, the batch
axis at each configured size, other dynamic axes at 1), read from ``.npy`` files, or made
as explicit samples say (Triton's ``model_warmup``: a shape per input, random values,
zeros or a file of raw bytes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from backends.base import Array, Backend, ModelSignature, TensorSpec
from backends.datatypes import from_numpy
from gateway.errors import InvalidInput
from gateway.protocol.binary_codec import decode_binary_tensor
from gateway.protocol.wire import RequestInput
from gateway.repository.confinement import OutsideModelDirectory, confined_path
from gateway.repository.warmup_config import WarmupConfig, WarmupSample, WarmupTensor

logger = logging.getLogger(__name__)

_WORDS = np.array([b"warm", b"up", b""], dtype=object)
MAX_SAMPLE_FILE_BYTES = 1 << 28
"""A warm-up sample's file is refused past this size, before it is read."""


class WarmupError(Exception):
    """Warm-up could not run; the message says which input or call failed."""


def _generated(spec: TensorSpec, rows: int, rng: np.random.Generator) -> Array:
    shape = tuple(
        (rows if axis == 0 and spec.has_dynamic_batch else 1) if dim is None else dim
        for axis, dim in enumerate(spec.shape)
    )
    return _generated_shape(spec, shape, rng)


def generated_batches(signature: ModelSignature, config: WarmupConfig) -> list[dict[str, Array]]:
    """One generated input batch per configured batch size (fixed seed)."""
    rng = np.random.default_rng(0)
    return [
        {spec.name: _generated(spec, rows, rng) for spec in signature.inputs if not spec.optional}
        for rows in config.batch_sizes
    ]


def file_batch(
    signature: ModelSignature, files: Mapping[str, str], model_dir: Path
) -> dict[str, Array]:
    """The inputs named in ``warmup.inputs``, read from ``.npy`` files and checked against
    the signature (blocking: call it in a thread)."""
    missing = sorted({spec.name for spec in signature.inputs if not spec.optional} - set(files))
    unknown = sorted(set(files) - {spec.name for spec in signature.inputs})
    if missing or unknown:
        raise WarmupError(
            f"warmup.inputs must name every input and nothing else: missing {missing}, "
            f"unknown {unknown}"
        )
    batch: dict[str, Array] = {}
    for spec in signature.inputs:
        if spec.name not in files:  # an optional input left out
            continue
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


def sample_batches(
    signature: ModelSignature, samples: list[WarmupSample], model_dir: Path
) -> list[tuple[dict[str, Array], int]]:
    """Each sample's inputs, made as it says, with its count (blocking when a sample
    names a file: call it in a thread)."""
    rng = np.random.default_rng(0)
    made = []
    for index, sample in enumerate(samples):
        where = f"warmup.samples[{index}]" + (f" ({sample.name!r})" if sample.name else "")
        names = {spec.name for spec in signature.inputs}
        required = {spec.name for spec in signature.inputs if not spec.optional}
        missing = sorted(required - set(sample.inputs))
        unknown = sorted(set(sample.inputs) - names)
        if missing or unknown:
            raise WarmupError(
                f"{where}.inputs must name every input of the model and nothing else: "
                f"missing {missing}, unknown {unknown}"
            )
        batch = {
            spec.name: _sample_input(spec, sample.inputs[spec.name], f"{where}.inputs.{spec.name}",
                                     model_dir, rng)
            for spec in signature.inputs
            if spec.name in sample.inputs
        }  # fmt: skip
        made.append((batch, sample.count))
    return made


def _sample_input(
    spec: TensorSpec, tensor: WarmupTensor, where: str, model_dir: Path, rng: np.random.Generator
) -> Array:
    datatype = from_numpy(spec.dtype)
    if tensor.datatype is not None and tensor.datatype != datatype:
        raise WarmupError(f"{where}: datatype {tensor.datatype}, the input's is {datatype}")
    shape = tuple(tensor.shape)
    fits = len(shape) == len(spec.shape) and all(
        dim is None or dim == size for dim, size in zip(spec.shape, shape, strict=True)
    )
    if not fits:
        expected = [-1 if d is None else d for d in spec.shape]
        raise WarmupError(f"{where}: shape {list(shape)}, the input takes {expected}")
    if tensor.file is not None:
        return _raw_file(spec, tensor.file, shape, f"{where}.file", model_dir)
    if tensor.values == "zeros":
        return (
            np.full(shape, b"", dtype=object)
            if datatype == "BYTES"
            else np.zeros(shape, spec.dtype)
        )
    return _generated_shape(spec, shape, rng)


def _raw_file(
    spec: TensorSpec, name: str, shape: tuple[int, ...], where: str, model_dir: Path
) -> Array:
    """A tensor from a file of its raw bytes, read and checked as binary tensor data is."""
    try:
        path = confined_path(model_dir, name, where)
        size = path.stat().st_size
        if size > MAX_SAMPLE_FILE_BYTES:
            raise WarmupError(f"{where}: {name} is {size} bytes, over {MAX_SAMPLE_FILE_BYTES}")
        raw = path.read_bytes()
    except OutsideModelDirectory as exc:
        raise WarmupError(str(exc)) from None
    except OSError as exc:
        raise WarmupError(f"{where}: cannot read {name}: {exc}") from None
    described = RequestInput.model_construct(
        name=spec.name, shape=list(shape), datatype=from_numpy(spec.dtype), parameters=None, data=[]
    )
    try:
        return decode_binary_tensor(described, spec, memoryview(raw), allow_non_finite=True)
    except InvalidInput as exc:
        raise WarmupError(f"{where}: {exc.message}") from None


def _generated_shape(spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator) -> Array:
    kind = spec.dtype.kind
    if kind == "f":
        return rng.uniform(0, 1, shape).astype(spec.dtype)
    if kind in "iu":
        return rng.integers(0, 2, shape).astype(spec.dtype)
    if kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.choice(_WORDS, shape)  # BYTES: object arrays of bytes


async def warm_up(backend: Backend, batches: list[dict[str, Array]], runs: int) -> float:
    """Run every batch ``runs`` times on ``backend``; returns the seconds it took."""
    return await warm_up_counted(backend, [(batch, runs) for batch in batches])


async def warm_up_counted(backend: Backend, batches: list[tuple[dict[str, Array], int]]) -> float:
    """Run each batch its count of times on ``backend``; returns the seconds it took."""
    started = time.perf_counter()
    for batch, runs in batches:
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
    signature = backend.signature
    try:
        if config.samples:
            counted = await asyncio.to_thread(sample_batches, signature, config.samples, model_dir)
        elif config.inputs:
            batch = await asyncio.to_thread(file_batch, signature, config.inputs, model_dir)
            counted = [(batch, config.runs)]
        else:
            counted = [(batch, config.runs) for batch in generated_batches(signature, config)]
        seconds = await warm_up_counted(backend, counted)
    except WarmupError as exc:
        logger.error("%s failed its warm-up: %s", label, exc)
        raise
    calls = sum(count for _batch, count in counted)
    logger.info("%s warmed up: %d call(s) in %.0f ms", label, calls, seconds * 1000)
