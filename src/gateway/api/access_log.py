"""The access log: who called (the subject, never the token), and for inference requests
the version that answered and the status."""

from __future__ import annotations

import logging

from starlette.types import Scope

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


class Exchange:
    """What one inference request came to, filled in as the pipeline goes."""

    __slots__ = ("status", "subject", "version")

    def __init__(self) -> None:
        self.status = 200
        self.version = ""
        self.subject: str | None = None


def log_inference(scope: Scope, model: str, exchange: Exchange, seconds: float) -> None:
    """One line per inference request: path, model, version, status, subject, time."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "%s %s model=%s version=%s status=%d sub=%r %.2fms",
            scope["method"],
            scope["path"],
            model,
            exchange.version or "-",
            exchange.status,
            exchange.subject,
            seconds * 1000,
        )
