"""Model metadata, readiness and the repository index, as the protocol's wire models."""

from __future__ import annotations

from backends.base import TensorSpec
from backends.datatypes import from_numpy
from gateway.errors import ModelNotReady
from gateway.protocol.wire import (
    ModelMetadataResponse,
    ModelReadyResponse,
    RepositoryIndexEntry,
    TensorMetadata,
    VersionStatus,
)
from gateway.repository.registry import ModelRegistry


def _tensor(spec: TensorSpec) -> TensorMetadata:
    return TensorMetadata(
        name=spec.name,
        datatype=from_numpy(spec.dtype),
        shape=[-1 if dim is None else dim for dim in spec.shape],
    )


def model_metadata(
    registry: ModelRegistry, name: str, version: str | None
) -> ModelMetadataResponse:
    """Signature and versions of a model (of its highest ready version when unversioned)."""
    model = registry.resolve(name, version)
    assert model.backend is not None
    signature = model.backend.signature
    entry = registry.entry(name)
    versions = [str(v) for v in sorted(entry.versions)]
    routing = entry.routing
    return ModelMetadataResponse(
        name=name,
        versions=versions if version is None else [str(model.version)],
        platform=model.backend.metadata.get("platform", "onnxruntime_onnx"),
        inputs=[_tensor(spec) for spec in signature.inputs],
        outputs=[_tensor(spec) for spec in signature.outputs],
        parameters={"version": str(model.version), **model.backend.metadata},
        version_states=[
            VersionStatus(
                version=str(v.version),
                state=v.state.value,
                reason=v.reason,
                labels=routing.labels_of(v.version),
            )
            for v in sorted(entry.versions.values(), key=lambda v: v.version)
        ],
        traffic=dict(routing.split),
    )


def model_ready(registry: ModelRegistry, name: str, version: str | None) -> ModelReadyResponse:
    """Ready, or ``ModelNotReady`` naming the state (``ModelNotFound`` when unknown)."""
    model = registry.find(name, version)
    if not model.ready:
        raise ModelNotReady(
            f"model '{name}' version {model.version} is not ready ({model.state.value}); "
            "POST /v2/repository/index shows why"
        )
    return ModelReadyResponse(name=name, version=str(model.version), ready=True)


def check_server_ready(registry: ModelRegistry, *, require_all: bool) -> None:
    """Raise ``ModelNotReady`` listing what is not ready, unless the server is."""
    if registry.is_ready(require_all=require_all):
        return
    waiting = [f"{v.name}/{v.version} {v.state.value}" for v in registry.versions() if not v.ready]
    problems = [name for name in registry.names() if registry.entry(name).problem]
    detail = ", ".join(waiting + [f"{name} (no servable version)" for name in problems])
    raise ModelNotReady(f"server is not ready: {detail or 'no models in the repository'}")


def repository_index(registry: ModelRegistry) -> list[RepositoryIndexEntry]:
    """Every model version with its state and, when it cannot serve, the reason."""
    entries = [
        RepositoryIndexEntry(
            name=v.name,
            version=str(v.version),
            state=v.state.value,
            reason=v.reason,
            labels=registry.entry(v.name).routing.labels_of(v.version),
        )
        for v in registry.versions()
    ]
    for name in registry.names():
        problem = registry.entry(name).problem
        if problem:
            entries.append(
                RepositoryIndexEntry(name=name, version="", state="UNAVAILABLE", reason=problem)
            )
    return entries
