"""The OpenAPI document of an app with its repository loaded, for ``tensorgate openapi``."""

from __future__ import annotations

from typing import Any

from gateway.api.app import create_app
from gateway.settings import Settings


async def export_openapi(settings: Settings) -> dict[str, Any]:
    """Run the lifespan (so per-model content is present) and return the document."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return app.openapi()
