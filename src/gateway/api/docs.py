"""Swagger UI served from the installed swagger-ui-bundle package: works offline, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def install_docs(
    app: FastAPI, openapi_url: str = "/openapi.json", dependencies: Sequence[Any] = ()
) -> None:
    """Mount the Swagger UI assets, ``/docs`` and ``openapi_url``; ``dependencies`` guard both.

    ``app`` must be made with ``openapi_url=None``: FastAPI's own route takes no dependencies.
    """
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
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
