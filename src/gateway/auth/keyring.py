"""The key ring: every configured verification key, built from the auth settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from gateway.auth.jwks import RemoteJwks
from gateway.auth.keys import (
    KeyConfigError,
    VerificationKey,
    jwks_keys,
    pem_keys,
    require_cryptography_backend,
    secret_keys,
    select,
)
from gateway.settings import AuthSettings

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class KeyRing:
    """Every configured verification key: static ones first, then the remote JWKS."""

    def __init__(self, static: Sequence[VerificationKey], remote: RemoteJwks | None = None) -> None:
        self.static = tuple(static)
        self.remote = remote

    @property
    def empty(self) -> bool:
        """True when nothing at all is configured to verify tokens."""
        return not self.static and self.remote is None

    async def keys_for(self, kid: str | None, algorithm: str) -> list[VerificationKey]:
        """Keys that may verify a token with this ``kid`` and ``alg``."""
        found = select(self.static, kid, algorithm)
        if found or self.remote is None:
            return found
        return await self.remote.keys_for(kid, algorithm)


def static_keys(auth: AuthSettings) -> list[VerificationKey]:
    """The secret's and key files' keys (reads the files); raises ``KeyConfigError``."""
    require_cryptography_backend()
    static: list[VerificationKey] = []
    if auth.secret is not None:
        secret = auth.secret.get_secret_value().encode()
        static += secret_keys(secret, auth.secret_algorithms)
    for path in (auth.public_key_file, auth.private_key_file):
        if path is not None:
            static += _file_keys(path, lambda data: pem_keys(data, auth.public_key_algorithms))
    if auth.jwks_file is not None:
        static += _file_keys(auth.jwks_file, lambda data: _jwks_file_keys(data, auth))
    return static


def build_key_ring(auth: AuthSettings, client: httpx.AsyncClient | None = None) -> KeyRing:
    """Every key ``auth`` configures; ``client`` fetches the JWKS URL if one is set."""
    static = static_keys(auth)
    remote = None
    if auth.jwks_url is not None:
        if client is None:
            raise KeyConfigError("auth.jwks_url is set but no HTTP client was given")
        url = urlsplit(auth.jwks_url)
        if url.scheme == "http" and url.hostname not in _LOOPBACK:
            # Whoever can alter the key set in transit can mint tokens we accept.
            logger.warning("auth.jwks_url uses plain http; use https outside a test setup")
        remote = RemoteJwks(
            auth.jwks_url,
            auth.jwks_algorithms,
            client,
            min_refresh_interval_s=auth.jwks_refresh_min_interval_s,
        )
    return KeyRing(static, remote)


def _file_keys(
    path: Path, parse: Callable[[bytes], list[VerificationKey]]
) -> list[VerificationKey]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        return parse(data)
    except KeyConfigError as exc:
        raise KeyConfigError(f"{path}: {exc}") from None


def _jwks_file_keys(data: bytes, auth: AuthSettings) -> list[VerificationKey]:
    try:
        document = json.loads(data)
    except ValueError:
        raise KeyConfigError("not a JSON document") from None
    keys = jwks_keys(document, auth.jwks_algorithms)
    if not keys:
        raise KeyConfigError(f"no usable key for the algorithms {auth.jwks_algorithms}")
    return keys
