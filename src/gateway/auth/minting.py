"""Minting tokens with the configured signing key (``tensorgate token``, the dev banner)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from gateway.auth.keys import KeyConfigError, algorithms_for, load_public_key
from gateway.settings import AuthSettings

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class NoSigningKey(KeyConfigError):
    """Only verification keys are configured: tokens come from the identity provider."""


@dataclass(frozen=True)
class SigningKey:
    """Key material that signs tokens with one algorithm (never printed or logged)."""

    algorithm: str
    material: Any

    def __repr__(self) -> str:
        return f"SigningKey(algorithm={self.algorithm!r})"


def parse_duration(text: str) -> int:
    """Seconds in ``90``, ``90s``, ``15m``, ``1h`` or ``7d``; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"'{text}' is not a positive duration such as 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def signing_key(auth: AuthSettings) -> SigningKey:
    """The key ``auth`` signs with: the private key file, else the shared secret."""
    if auth.private_key_file is not None:
        try:
            pem = auth.private_key_file.read_bytes()
        except OSError as exc:
            raise KeyConfigError(f"cannot read {auth.private_key_file}: {exc.strerror}") from None
        return _private_key(pem, auth)
    if auth.secret is not None:
        return SigningKey(auth.secret_algorithms[0], auth.secret.get_secret_value())
    raise NoSigningKey(
        "this server only verifies tokens (auth.public_key_file / auth.jwks_file / "
        "auth.jwks_url): get tokens from your identity provider, or configure "
        "auth.secret or auth.private_key_file to mint them here"
    )


def _private_key(pem: bytes, auth: AuthSettings) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"{auth.private_key_file} is not a PEM private key ({exc})") from None
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyConfigError(f"{auth.private_key_file} is not an RSA or EC private key")
    fitting = algorithms_for(load_public_key(pem))
    algorithm = next((a for a in auth.public_key_algorithms if a in fitting), None)
    if algorithm is None:
        raise KeyConfigError(
            f"{auth.private_key_file} cannot sign any of {list(auth.public_key_algorithms)}"
        )
    return SigningKey(algorithm, pem.decode())


def mint_token(
    key: SigningKey,
    *,
    subject: str,
    scopes: Iterable[str],
    ttl_s: int,
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """A signed JWT for ``subject`` with ``scope``, ``iat``, ``exp`` (and ``iss``/``aud``)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": issued,
        "exp": issued + ttl_s,
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    token: str = jwt.encode(claims, key.material, algorithm=key.algorithm)
    return token
