"""The statistics extension: ``GET /v2/models[/<m>[/versions/<v>]]/stats``.

With several worker processes, the counts of all of them added up. Included before the
metadata routes: ``/v2/models/stats`` would otherwise be read as
the metadata of a model called ``stats``.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.dependencies import REQUIRE_READ, ControlDep, VersionPath
from gateway.api.responses import AUTH, MODEL_ROUTE, VERSION_ROUTE
from gateway.protocol.triton_wire import ModelStatisticsResponse

router = APIRouter(tags=["models"], dependencies=[REQUIRE_READ])


@router.get("/v2/models/stats", operation_id="all_model_statistics", responses=AUTH)
async def all_model_statistics(control: ControlDep) -> ModelStatisticsResponse:
    """Statistics of every ready model version."""
    return await control.statistics(None, None)


@router.get("/v2/models/{model_name}/stats", operation_id="model_statistics", responses=MODEL_ROUTE)
async def statistics_of_model(model_name: str, control: ControlDep) -> ModelStatisticsResponse:
    """Statistics of every ready version of a model."""
    return await control.statistics(model_name, None)


@router.get(
    "/v2/models/{model_name}/versions/{model_version}/stats",
    operation_id="model_version_statistics",
    responses=VERSION_ROUTE,
)
async def statistics_of_version(
    model_name: str, model_version: VersionPath, control: ControlDep
) -> ModelStatisticsResponse:
    """Statistics of one ready version of a model."""
    return await control.statistics(model_name, model_version)
