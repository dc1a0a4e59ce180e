"""Swagger UI served from assets of an installed package: works offline, no CDN.

The assets come from fastapi-offline, which ships a current Swagger UI 5: our document is
OpenAPI 3.1, which the Swagger UI 4 of swagger-ui-bundle cannot render.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def install_docs(
    app: FastAPI, openapi_url: str = "/openapi.json", dependencies: Sequence[Any] = ()
) -> None:
    """Mount the Swagger UI assets, ``/docs`` and ``openapi_url``; ``dependencies`` guard both.

    ``app`` must be made with ``openapi_url=None``: FastAPI's own route takes no dependencies.
    """
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="swagger-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "tryItOutEnabled": True},
        )

    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    guards = list(dependencies)
    app.add_api_route(
        "/docs", swagger_ui, methods=["GET"], include_in_schema=False, dependencies=guards
    )
    app.add_api_route(
        openapi_url, openapi_document, methods=["GET"], include_in_schema=False, dependencies=guards
    )
