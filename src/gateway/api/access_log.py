"""The access log's line about who called: the subject, never the token."""

from __future__ import annotations

import logging

from gateway.auth.authenticator import Authenticator
from gateway.auth.principal import Principal
from gateway.errors import Unauthorized

access_log = logging.getLogger("gateway.access")


async def authenticate(
    authenticator: Authenticator, method: str, path: str, authorization: str | None
) -> Principal:
    """The caller of ``method path``, logged with its subject; ``Unauthorized`` is logged
    with the reason and raised."""
    try:
        principal = await authenticator.authenticate(authorization)
    except Unauthorized as exc:
        access_log.info("%s %s refused: %s", method, path, exc.message)
        raise
    access_log.info("%s %s sub=%r", method, path, principal.subject)
    return principal
