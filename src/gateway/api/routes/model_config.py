"""The model configuration extension: ``GET /v2/models/<m>[/versions/<v>]/config``."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.dependencies import REQUIRE_READ, RegistryDep, VersionPath
from gateway.api.responses import MODEL_ROUTE, VERSION_ROUTE
from gateway.dataplane.model_config import model_config
from gateway.protocol.triton_wire import ModelConfigResponse

router = APIRouter(tags=["models"], dependencies=[REQUIRE_READ])


# Triton's JSON leaves out what a model does not use (dynamic_batching), never null.
@router.get(
    "/v2/models/{model_name}/config",
    operation_id="model_config",
    responses=MODEL_ROUTE,
    response_model_exclude_none=True,
)
async def model_configuration(model_name: str, registry: RegistryDep) -> ModelConfigResponse:
    """Triton-style configuration of a model's highest ready version."""
    return model_config(registry, model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}/config",
    operation_id="model_version_config",
    responses=VERSION_ROUTE,
    response_model_exclude_none=True,
)
async def model_version_configuration(
    model_name: str, model_version: VersionPath, registry: RegistryDep
) -> ModelConfigResponse:
    """Triton-style configuration of one version of a model."""
    return model_config(registry, model_name, model_version)
