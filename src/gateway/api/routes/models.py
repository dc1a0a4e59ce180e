"""Model metadata, model readiness and the repository index."""

from __future__ import annotations

from fastapi import APIRouter

from backends.base import TensorSpec
from gateway.api.dependencies import REQUIRE_READ, RegistryDep
from gateway.api.responses import AUTH, MODEL_ROUTE
from gateway.datatypes import from_numpy
from gateway.errors import ModelNotReady
from gateway.protocol import (
    ModelMetadataResponse,
    ModelReadyResponse,
    RepositoryIndexEntry,
    TensorMetadata,
)
from gateway.registry import ModelRegistry

router = APIRouter(tags=["models"], dependencies=[REQUIRE_READ])


def _tensor(spec: TensorSpec) -> TensorMetadata:
    return TensorMetadata(
        name=spec.name,
        datatype=from_numpy(spec.dtype),
        shape=[-1 if dim is None else dim for dim in spec.shape],
    )


def _metadata(registry: ModelRegistry, name: str, version: str | None) -> ModelMetadataResponse:
    model = registry.resolve(name, version)
    assert model.backend is not None
    signature = model.backend.signature
    versions = [str(v) for v in sorted(registry.entry(name).versions)]
    return ModelMetadataResponse(
        name=name,
        versions=versions if version is None else [str(model.version)],
        platform=model.backend.metadata.get("platform", "onnxruntime_onnx"),
        inputs=[_tensor(spec) for spec in signature.inputs],
        outputs=[_tensor(spec) for spec in signature.outputs],
        parameters={"version": str(model.version), **model.backend.metadata},
    )


def _ready(registry: ModelRegistry, name: str, version: str | None) -> ModelReadyResponse:
    model = registry.find(name, version)
    if not model.ready:
        raise ModelNotReady(
            f"model '{name}' version {model.version} is not ready ({model.state.value}); "
            "POST /v2/repository/index shows why"
        )
    return ModelReadyResponse(name=name, version=str(model.version), ready=True)


@router.get("/v2/models/{model_name}", operation_id="model_metadata", responses=MODEL_ROUTE)
async def model_metadata(model_name: str, registry: RegistryDep) -> ModelMetadataResponse:
    """Inputs, outputs and versions of a model (signature of its highest ready version)."""
    return _metadata(registry, model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}",
    operation_id="model_version_metadata",
    responses=MODEL_ROUTE,
)
async def model_version_metadata(
    model_name: str, model_version: str, registry: RegistryDep
) -> ModelMetadataResponse:
    """Inputs and outputs of one version of a model."""
    return _metadata(registry, model_name, model_version)


@router.get("/v2/models/{model_name}/ready", operation_id="model_ready", responses=MODEL_ROUTE)
async def model_ready(model_name: str, registry: RegistryDep) -> ModelReadyResponse:
    """200 when the model has a ready version, 503 when not, 404 when unknown."""
    return _ready(registry, model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}/ready",
    operation_id="model_version_ready",
    responses=MODEL_ROUTE,
)
async def model_version_ready(
    model_name: str, model_version: str, registry: RegistryDep
) -> ModelReadyResponse:
    """200 when this version is ready, 503 when not, 404 when unknown."""
    return _ready(registry, model_name, model_version)


@router.post(
    "/v2/repository/index",
    operation_id="repository_index",
    tags=["repository"],
    responses=AUTH,
)
async def repository_index(registry: RegistryDep) -> list[RepositoryIndexEntry]:
    """Every model version with its state and, when it cannot serve, the reason."""
    entries = [
        RepositoryIndexEntry(
            name=v.name, version=str(v.version), state=v.state.value, reason=v.reason
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
