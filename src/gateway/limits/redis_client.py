"""The Redis client of the shared limits, made from ``limits.redis`` settings: TLS, a
password from the environment or a file, one time limit per operation, no retries (a
failed operation falls back to the even share at once; ``gateway.limits.shared``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.settings import RedisSettings


class RedisConfigError(Exception):
    """A ``limits.redis`` setting cannot be used; the message names it."""


def redis_password(settings: RedisSettings) -> str | None:
    """The password: ``password``, or the first line of ``password_file``."""
    if settings.password is not None:
        return settings.password.get_secret_value()
    if settings.password_file is None:
        return None
    try:
        text = settings.password_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RedisConfigError(
            f"limits.redis.password_file: cannot read {settings.password_file}: {exc}"
        ) from None
    return text.rstrip("\r\n")


def redis_client(settings: RedisSettings) -> Redis:
    """A client for ``settings.url`` (which must be set); connects on first use."""
    assert settings.url is not None
    timeout_s = settings.timeout_ms / 1000
    options: dict[str, Any] = {
        "password": redis_password(settings),
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "client_name": "tensorgate-limits",
    }
    if settings.url.startswith("rediss://"):
        for option, path in (
            ("ssl_ca_certs", settings.tls_ca_file),
            ("ssl_certfile", settings.tls_certfile),
            ("ssl_keyfile", settings.tls_keyfile),
        ):
            if path is not None:
                options[option] = str(path)
    return Redis.from_url(settings.url, **options)


def redis_location(settings: RedisSettings) -> str:
    """Where the client connects, for logs: scheme, host, port and path, no credentials."""
    parts = urlsplit(settings.url or "")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
