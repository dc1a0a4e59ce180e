"""Triton's shared-memory routes (``/v2/systemsharedmemory/...``, ``/v2/cudasharedmemory/...``):
status and unregister answer as Triton does with no region registered, and a registration
is refused saying why (``gateway.dataplane.shared_memory``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.dependencies import REQUIRE_READ
from gateway.dataplane.shared_memory import (
    Kind,
    refuse_registration,
    region_status,
    unregister,
)

router = APIRouter(tags=["shared memory"], dependencies=[REQUIRE_READ])
_EXTENSIONS: dict[str, Kind] = {"systemsharedmemory": "system", "cudasharedmemory": "cuda"}


def _add(extension: str, kind: Kind) -> None:
    async def status_all() -> list[dict[str, Any]]:
        return region_status(kind, None)

    async def status_one(region_name: str) -> list[dict[str, Any]]:
        return region_status(kind, region_name)

    async def unregister_all() -> dict[str, Any]:
        unregister(kind, None)
        return {}

    async def unregister_one(region_name: str) -> dict[str, Any]:
        unregister(kind, region_name)
        return {}

    async def register(region_name: str) -> None:
        raise refuse_registration(kind, region_name)

    routes = (
        ("status", "GET", "", status_all),
        ("status", "GET", "/region/{region_name}", status_one),
        ("unregister", "POST", "", unregister_all),
        ("unregister", "POST", "/region/{region_name}", unregister_one),
        ("register", "POST", "/region/{region_name}", register),
    )
    for action, method, region, handler in routes:
        router.add_api_route(
            f"/v2/{extension}{region}/{action}",
            handler,
            methods=[method],
            operation_id=f"{extension}_{action}{'_region' if region else ''}",
            summary=f"{action} ({extension})",
            # Triton's routes for Triton's clients, not operations to try in Swagger UI.
            include_in_schema=False,
        )


for _extension, _kind in _EXTENSIONS.items():
    _add(_extension, _kind)
