"""Keys the auth tests make for themselves, and helpers that mint or forge tokens with them."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt

ISSUER = "https://issuer.test"
AUDIENCE = "tensorgate-test"


@dataclass(frozen=True)
class KeyPair:
    """A private key (PEM) and its public half as PEM and as a JWK."""

    private_pem: bytes
    public_pem: bytes
    algorithm: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid`` and ``alg``."""
        data: dict[str, Any] = jwk.construct(self.public_pem, self.algorithm).to_dict()
        return {**data, "kid": self.kid, "use": "sig"}


def _pair(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, alg: str, kid: str) -> KeyPair:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem, public_pem, alg, kid)


def rsa_pair(kid: str = "rsa-1") -> KeyPair:
    """A fresh 2048-bit RSA key pair for RS256."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", kid)


def ec_pair(kid: str = "ec-1") -> KeyPair:
    """A fresh P-256 key pair for ES256."""
    return _pair(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for the test issuer and audience; ``None`` values drop a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "scope": "models:read models:infer",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(key: Any, algorithm: str, payload: dict[str, Any], **headers: Any) -> str:
    """A token signed with python-jose."""
    token: str = jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)
    return token


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any] | str, payload: dict[str, Any] | str, signature: str) -> str:
    """A token assembled by hand, for shapes no honest library would produce."""

    def part(value: dict[str, Any] | str) -> str:
        return b64((value if isinstance(value, str) else json.dumps(value)).encode())

    return f"{part(header)}.{part(payload)}.{signature}"
