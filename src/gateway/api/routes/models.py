"""Model metadata and model readiness."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.dependencies import REQUIRE_READ, RegistryDep, VersionPath
from gateway.api.responses import MODEL_ROUTE, VERSION_ROUTE
from gateway.dataplane import metadata
from gateway.protocol.wire import ModelMetadataResponse, ModelReadyResponse

router = APIRouter(tags=["models"], dependencies=[REQUIRE_READ])


@router.get("/v2/models/{model_name}", operation_id="model_metadata", responses=MODEL_ROUTE)
async def model_metadata(model_name: str, registry: RegistryDep) -> ModelMetadataResponse:
    """Inputs, outputs and versions of a model (signature of its highest ready version)."""
    return metadata.model_metadata(registry, model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}",
    operation_id="model_version_metadata",
    responses=VERSION_ROUTE,
)
async def model_version_metadata(
    model_name: str, model_version: VersionPath, registry: RegistryDep
) -> ModelMetadataResponse:
    """Inputs and outputs of one version of a model."""
    return metadata.model_metadata(registry, model_name, model_version)


@router.get("/v2/models/{model_name}/ready", operation_id="model_ready", responses=MODEL_ROUTE)
async def model_ready(model_name: str, registry: RegistryDep) -> ModelReadyResponse:
    """200 when the model has a ready version, 503 when not, 404 when unknown."""
    return metadata.model_ready(registry, model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}/ready",
    operation_id="model_version_ready",
    responses=VERSION_ROUTE,
)
async def model_version_ready(
    model_name: str, model_version: VersionPath, registry: RegistryDep
) -> ModelReadyResponse:
    """200 when this version is ready, 503 when not, 404 when unknown."""
    return metadata.model_ready(registry, model_name, model_version)
