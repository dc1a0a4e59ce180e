"""The model configuration extension: a version's signature and config.yaml as Triton's JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from backends.base import TensorSpec
from gateway.dataplane.warmup_answer import warmup_samples
from gateway.protocol.triton_wire import (
    DynamicBatching,
    InstanceGroup,
    ModelConfigResponse,
    ModelInputConfig,
    ModelOutputConfig,
    ModelTensorConfig,
    QueuePolicy,
    TensorReshape,
)
from gateway.repository.config import LatestVersions, ModelConfig, SpecificVersions
from gateway.repository.declared import Declaration, triton_data_type
from gateway.repository.registry import ModelRegistry, batch_policy

# Execution providers that run on a GPU; any other one is reported as KIND_CPU.
_GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})


def _tensor(spec: TensorSpec, *, batched: bool) -> ModelTensorConfig:
    shape = spec.shape[1:] if batched else spec.shape
    return ModelTensorConfig(
        name=spec.name,
        data_type=triton_data_type(spec),
        dims=[-1 if dim is None else dim for dim in shape],
    )


def _version_policy(config: ModelConfig) -> dict[str, dict[str, int | list[int]]]:
    policy = config.version_policy
    if isinstance(policy, LatestVersions):
        return {"latest": {"num_versions": policy.latest}}
    if isinstance(policy, SpecificVersions):
        return {"specific": {"versions": sorted(policy.specific)}}
    return {"all": {}}


def _parameters(metadata: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Triton's ``parameters`` form (``{"key": {"string_value": ...}}``) of the facts a
    backend reports: the execution provider in use and the one asked for."""
    keys = ("execution_provider", "execution_provider_requested", "device_id")
    return {key: {"string_value": metadata[key]} for key in keys if key in metadata}


def model_config(registry: ModelRegistry, name: str, version: str | None) -> ModelConfigResponse:
    """The configuration of a ready version (the highest ready one when unversioned)."""
    model = registry.resolve(name, version)
    backend = model.backend
    assert backend is not None
    signature = backend.signature
    declaration = model.config.declaration
    batched = all(spec.has_dynamic_batch for spec in signature.inputs)
    policy = batch_policy(model, backend)
    section = model.config.batching
    dynamic = None
    if policy.batching:
        timeout_ms = section.default_timeout_ms or 0.0
        dynamic = DynamicBatching(
            preferred_batch_size=list(policy.preferred_batch_sizes),
            max_queue_delay_microseconds=round(policy.max_queue_delay_s * 1e6),
            default_queue_policy=QueuePolicy(
                max_queue_size=policy.max_queue_size,
                default_timeout_microseconds=round(timeout_ms * 1000),
            ),
        )
    provider = backend.metadata.get("execution_provider", "")
    kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_GPU" if provider in _GPU_PROVIDERS else "KIND_CPU"
    gpus = [int(backend.metadata.get("device_id", "0"))] if kind == "KIND_GPU" else None
    return ModelConfigResponse(
        name=name,
        platform=backend.metadata.get("platform", "onnxruntime_onnx"),
        backend="onnxruntime",
        version_policy=_version_policy(model.config),
        max_batch_size=policy.max_batch_size if batched else 0,
        input=[
            ModelInputConfig(
                **_tensor(spec, batched=batched).model_dump(exclude={"reshape"}),
                format=declaration.format_of(spec.name) if declaration else "FORMAT_NONE",
                reshape=_reshape(declaration, spec.name),
                optional=spec.optional,
            )
            for spec in signature.inputs
        ],
        output=[
            ModelOutputConfig(
                **_tensor(spec, batched=batched).model_dump(exclude={"reshape"}),
                label_filename=model.config.labels.get(spec.name, ""),
                reshape=_reshape(declaration, spec.name),
            )
            for spec in signature.outputs
        ],
        dynamic_batching=dynamic,
        instance_group=[InstanceGroup(name=name, kind=kind, count=policy.instances, gpus=gpus)],
        parameters=_parameters(backend.metadata),
        model_warmup=warmup_samples(model.config.warmup, signature, batched=batched),
    )


def _reshape(declaration: Declaration | None, name: str) -> TensorReshape | None:
    shape = declaration.reshape_of(name) if declaration else None
    return None if shape is None else TensorReshape(shape=list(shape))
