"""The OpenAPI document of an app with its repository loaded, for ``tensorgate openapi``."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import SecretStr

from gateway.api.app import create_app
from gateway.settings import AuthSettings, Settings


async def export_openapi(settings: Settings) -> dict[str, Any]:
    """Run the lifespan (so per-model content is present) and return the document."""
    # The document does not depend on the keys: a throwaway secret keeps the export from
    # reading key files, fetching a JWKS or warning that no key is configured.
    throwaway = AuthSettings(secret=SecretStr(secrets.token_urlsafe(48)))
    app = create_app(settings.model_copy(update={"auth": throwaway}))
    async with app.router.lifespan_context(app):
        return app.openapi()
