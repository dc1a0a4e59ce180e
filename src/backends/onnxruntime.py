"""The ONNX Runtime backend: session options, execution providers and a bounded thread pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from backends.base import STRING_DTYPE, Array, ModelSignature, RuntimeOptions, TensorSpec
from backends.errors import InferenceError, ModelLoadError
from backends.worker_pool import WorkerPool

logger = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})

# ONNX Runtime names element types "tensor(<onnx type>)"; map them onto numpy.
_ORT_TYPES: dict[str, np.dtype[Any]] = {
    "tensor(bool)": np.dtype(np.bool_),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(uint16)": np.dtype(np.uint16),
    "tensor(uint32)": np.dtype(np.uint32),
    "tensor(uint64)": np.dtype(np.uint64),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(string)": STRING_DTYPE,
}

_OPTIMIZATION_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """The execution providers to ask ONNX Runtime for, and why some were dropped."""

    providers: tuple[str, ...]
    unavailable: tuple[str, ...]


def choose_providers(requested: Sequence[str], available: Sequence[str]) -> ProviderChoice:
    """Keep the requested providers this onnxruntime build has, in order, CPU always last.

    Pure so that the GPU path can be tested on machines without one.
    """
    kept = [p for p in requested if p in available and p != CPU_PROVIDER]
    dropped = tuple(p for p in requested if p not in available)
    return ProviderChoice(providers=(*kept, CPU_PROVIDER), unavailable=dropped)


def _optional_specs(session: ort.InferenceSession, names: tuple[str, ...]) -> list[TensorSpec]:
    """The overridable initializers named optional, as optional inputs; ``ModelLoadError``
    naming one that is a required input or not in the model."""
    overridable = {node.name: node for node in session.get_overridable_initializers()}
    required = {node.name for node in session.get_inputs()}
    specs: list[TensorSpec] = []
    for name in names:
        node = overridable.get(name)
        if node is not None:
            specs.append(_tensor_spec(node, optional=True))
            continue
        if name in required:
            raise ModelLoadError(
                f"input '{name}' is declared optional, but the model requires it: only an "
                "initializer the graph also lists as an input (one ONNX Runtime lets a "
                "request override) can be left out"
            )
        known = ", ".join(overridable) or "none"
        raise ModelLoadError(
            f"input '{name}' is declared optional, but the model has no such input nor an "
            f"overridable initializer of that name (overridable: {known})"
        )
    return specs


def _tensor_spec(node: Any, *, optional: bool = False) -> TensorSpec:
    dtype = _ORT_TYPES.get(node.type)
    if dtype is None:
        raise ModelLoadError(f"tensor {node.name!r} has unsupported type {node.type}")
    shape: list[int | None] = []
    names: list[str | None] = []
    for dim in node.shape:
        fixed = isinstance(dim, int) and dim >= 0
        shape.append(dim if fixed else None)
        names.append(dim if isinstance(dim, str) else None)
    return TensorSpec(
        name=node.name,
        dtype=dtype,
        shape=tuple(shape),
        dim_names=tuple(names),
        optional=optional,
    )


def _session_options(options: RuntimeOptions) -> ort.SessionOptions:
    level = _OPTIMIZATION_LEVELS.get(options.graph_optimization_level)
    if level is None:
        known = ", ".join(_OPTIMIZATION_LEVELS)
        raise ModelLoadError(
            f"unknown graph_optimization_level {options.graph_optimization_level!r}; "
            f"expected one of {known}"
        )
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = options.intra_op_threads
    session_options.inter_op_num_threads = options.inter_op_threads
    session_options.graph_optimization_level = level
    for key, value in options.extra.items():
        session_options.add_session_config_entry(key, value)
    session_options.log_severity_level = 3  # errors only: ORT's warnings go to stderr raw
    return session_options


class OnnxRuntimeBackend:
    """One ONNX Runtime session with its own pool of ``instances`` worker threads."""

    def __init__(
        self,
        session: ort.InferenceSession,
        name: str,
        instances: int,
        *,
        requested: str = CPU_PROVIDER,
        io_binding: bool = False,
        optional_inputs: tuple[str, ...] = (),
    ) -> None:
        self._session = session
        self._name = name
        self._io_binding = io_binding
        self._signature = ModelSignature(
            inputs=(
                *(_tensor_spec(node) for node in session.get_inputs()),
                *_optional_specs(session, optional_inputs),
            ),
            outputs=tuple(_tensor_spec(node) for node in session.get_outputs()),
        )
        self._all_outputs = [spec.name for spec in self._signature.outputs]
        specs = (*self._signature.inputs, *self._signature.outputs)
        # I/O binding takes numeric tensors only; a model with strings runs plainly.
        self._io_binding = io_binding and all(spec.dtype != STRING_DTYPE for spec in specs)
        provider = session.get_providers()[0]
        self._metadata = {
            "platform": "onnxruntime_onnx",
            "execution_provider": provider,
            "execution_provider_requested": requested,
        }
        if provider in GPU_PROVIDERS:
            options = session.get_provider_options().get(provider, {})
            self._metadata["device_id"] = str(options.get("device_id", "0"))
        self._workers = WorkerPool(instances, name=f"ort-{name.replace(' ', '-')}")

    @classmethod
    def load(cls, path: Path, options: RuntimeOptions, name: str) -> OnnxRuntimeBackend:
        """Create the session (blocking: call it from a worker thread).

        The provider actually in use can differ from the first one asked for: not in this
        onnxruntime build, or (ONNX Runtime falls back by itself) no GPU or no CUDA
        libraries. With ``require_provider`` that fails the load; otherwise it is logged.
        """
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        available = ort.get_available_providers()
        choice = choose_providers(options.execution_providers, available)
        wanted = next(iter(options.execution_providers), CPU_PROVIDER)
        if options.require_provider and wanted in choice.unavailable:
            raise ModelLoadError(
                f"{wanted} is not available in this onnxruntime build (it offers: "
                f"{', '.join(available)}); when_provider_unavailable is fail"
            )
        providers = [(p, dict(options.provider_options.get(p, {}))) for p in choice.providers]
        try:
            session = ort.InferenceSession(
                str(path), sess_options=_session_options(options), providers=providers
            )
        except ModelLoadError:
            raise
        except Exception as exc:  # ORT raises its own pybind exception types
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise ModelLoadError(f"onnxruntime could not load {path.name}: {first_line}") from exc
        backend = cls(
            session,
            name,
            options.instances,
            requested=wanted,
            io_binding=options.io_binding,
            optional_inputs=options.optional_inputs,
        )
        in_use = backend.metadata["execution_provider"]
        if wanted != in_use:
            if options.require_provider:
                raise ModelLoadError(
                    f"asked for {wanted} but ONNX Runtime could only start {in_use} (no "
                    "device, or its libraries are missing); when_provider_unavailable is fail"
                )
            logger.warning(
                "model %s asked for %s but runs on %s (this onnxruntime build offers: %s)",
                name,
                wanted,
                in_use,
                ", ".join(available),
            )
        return backend

    @property
    def signature(self) -> ModelSignature:
        """Inputs and outputs as ONNX Runtime reports them."""
        return self._signature

    @property
    def metadata(self) -> Mapping[str, str]:
        """Platform and the execution provider actually in use."""
        return self._metadata

    def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> asyncio.Future[dict[str, Array]]:
        """Queue one batch on the worker pool at once; see ``backends.base.Backend``."""
        if self._workers.closed:
            closed: asyncio.Future[dict[str, Array]] = asyncio.get_running_loop().create_future()
            closed.set_exception(InferenceError(f"model {self._name} is closed", kind="closed"))
            return closed
        names = list(output_names) if output_names is not None else self._all_outputs
        return self._workers.submit(partial(self._run, names, dict(inputs)))

    def infer_now(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> dict[str, Array]:
        """Run one batch on the calling thread (the batcher does, on the event loop, for
        batches measured to take less than a hand-over to the pool); ``InferenceError``
        when the runtime fails or the backend is closed."""
        if self._workers.closed:
            raise InferenceError(f"model {self._name} is closed", kind="closed")
        names = list(output_names) if output_names is not None else self._all_outputs
        return self._run(names, dict(inputs))

    def _run(self, names: list[str], feed: dict[str, Array]) -> dict[str, Array]:
        try:
            if self._io_binding:
                results = self._run_bound(names, feed)
            else:
                results = self._session.run(names, feed)
        except Exception as exc:  # ORT's pybind errors share no useful base class
            raise InferenceError(str(exc), kind=type(exc).__name__) from exc
        return {name: np.asarray(value) for name, value in zip(names, results, strict=True)}

    def _run_bound(self, names: list[str], feed: dict[str, Array]) -> list[Any]:
        """One run through I/O binding: inputs read from host memory, outputs written to
        host memory by ONNX Runtime (on CUDA: one copy each way, no staging)."""
        binding = self._session.io_binding()
        for name, value in feed.items():
            binding.bind_cpu_input(name, value)
        for name in names:
            binding.bind_output(name, "cpu")
        self._session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    async def close(self) -> None:
        """Wait for running calls, then stop the worker threads; idempotent."""
        await self._workers.close()
