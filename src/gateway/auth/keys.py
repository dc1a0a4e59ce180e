"""Verification keys, each bound to one algorithm: a shared secret, a PEM key, JWKS entries."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jws

logger = logging.getLogger(__name__)

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
# RFC 7518 section 3.4: each ES algorithm pairs with exactly one curve.
EC_ALGORITHM_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
SUPPORTED_ALGORITHMS = frozenset(
    (*HMAC_ALGORITHMS, *RSA_ALGORITHMS, *EC_ALGORITHM_BY_CURVE.values())
)
# RFC 7518 section 3.2: an HMAC key must be at least as long as the hash output.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_RSA_BITS = 2048

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyConfigError(ValueError):
    """Configured key material is unusable; the message says what and why (never the key)."""


@dataclass(frozen=True)
class VerificationKey:
    """One python-jose key object that verifies exactly one algorithm."""

    algorithm: str
    key: Any
    kid: str | None = None

    def verify(self, token: str) -> bytes:
        """The payload bytes when the signature is valid; raises (any exception) otherwise."""
        payload: bytes = jws.verify(token, self.key, algorithms=[self.algorithm])
        return payload


def require_cryptography_backend() -> None:
    """Refuse to run on python-jose's pure-Python fallbacks (python-rsa, ecdsa)."""
    for algorithm in ("HS256", "RS256", "ES256"):
        backend = jwk.get_key(algorithm)
        if backend is None or not backend.__name__.startswith("Cryptography"):
            raise KeyConfigError(
                "python-jose is not using its cryptography backend; "
                "install python-jose[cryptography]"
            )


def secret_keys(secret: bytes, algorithms: Sequence[str]) -> list[VerificationKey]:
    """HMAC keys for ``secret``, one per allowed algorithm."""
    keys = []
    for algorithm in algorithms:
        if algorithm not in HMAC_ALGORITHMS:
            raise KeyConfigError(f"{algorithm} is not an HMAC algorithm; use HS256/384/512")
        minimum = HMAC_MIN_BYTES[algorithm]
        if len(secret) < minimum:
            raise KeyConfigError(
                f"the secret has {len(secret)} bytes; {algorithm} needs at least {minimum}"
            )
        try:
            keys.append(VerificationKey(algorithm, jwk.construct(secret, algorithm)))
        except Exception as exc:
            # python-jose refuses PEM or SSH keys as HMAC secrets (key confusion).
            raise KeyConfigError(f"the secret is not usable for {algorithm}: {exc}") from None
    return keys


def load_public_key(pem: bytes) -> PublicKey:
    """The public key in PEM text: a public key, a certificate, or a private key's half."""
    loaded: object
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            loaded = x509.load_pem_x509_certificate(pem).public_key()
        elif b"PRIVATE KEY-----" in pem:
            loaded = serialization.load_pem_private_key(pem, password=None).public_key()
        else:
            loaded = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"not a readable PEM key or certificate ({exc})") from None
    if not isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise KeyConfigError(f"unsupported key type {type(loaded).__name__}; use RSA or EC")
    return loaded


def algorithms_for(key: PublicKey) -> tuple[str, ...]:
    """The algorithms that key's type can verify at all."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyConfigError(f"RSA key has {key.key_size} bits; at least {MIN_RSA_BITS}")
        return RSA_ALGORITHMS
    algorithm = EC_ALGORITHM_BY_CURVE.get(key.curve.name)
    if algorithm is None:
        raise KeyConfigError(f"EC curve {key.curve.name} is not P-256, P-384 or P-521")
    return (algorithm,)


def public_keys(
    key: PublicKey, allowed: Sequence[str], kid: str | None = None
) -> list[VerificationKey]:
    """Keys for every allowed algorithm that fits ``key``'s type (none fitting is an error)."""
    fitting = [algorithm for algorithm in allowed if algorithm in algorithms_for(key)]
    if not fitting:
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else f"EC {key.curve.name}"
        raise KeyConfigError(
            f"a {kind} key cannot verify any of the allowed algorithms {list(allowed)}"
        )
    return [VerificationKey(algorithm, jwk.construct(key, algorithm), kid) for algorithm in fitting]


def pem_keys(pem: bytes, allowed: Sequence[str]) -> list[VerificationKey]:
    """Keys from a PEM public key, certificate or private key."""
    return public_keys(load_public_key(pem), allowed)


def jwks_keys(document: object, allowed: Sequence[str]) -> list[VerificationKey]:
    """Signature keys of a JWKS document; unusable entries are skipped with a warning."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise KeyConfigError('a JWKS document is a JSON object with a "keys" list')
    keys: list[VerificationKey] = []
    for index, entry in enumerate(document["keys"]):
        try:
            keys.extend(_jwk_keys(entry, allowed))
        except KeyConfigError as exc:
            logger.warning("JWKS key #%d skipped: %s", index, exc)
    return keys


def _jwk_keys(entry: object, allowed: Sequence[str]) -> Iterable[VerificationKey]:
    if not isinstance(entry, Mapping):
        raise KeyConfigError("entry is not a JSON object")
    kty, use, alg, kid = (entry.get(name) for name in ("kty", "use", "alg", "kid"))
    if kid is not None and not isinstance(kid, str):
        raise KeyConfigError("kid is not a string")
    if use not in (None, "sig"):
        raise KeyConfigError(f"use is {use!r}, not 'sig'")
    if kty not in ("RSA", "EC"):
        # Symmetric ("oct") keys never belong in a published key set.
        raise KeyConfigError(f"kty {kty!r} is not RSA or EC")
    if alg is not None and alg not in allowed:
        raise KeyConfigError(f"alg {alg!r} is not in the allowed list {list(allowed)}")
    try:
        # Any algorithm of the right family parses the JWK; binding happens below.
        parsed = jwk.construct(dict(entry), "RS256" if kty == "RSA" else "ES256")
        prepared = parsed.prepared_key
        public = prepared.public_key() if hasattr(prepared, "private_bytes") else prepared
    except Exception as exc:
        raise KeyConfigError(f"not a valid {kty} JWK ({type(exc).__name__})") from None
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise KeyConfigError(f"not a valid {kty} JWK")
    # A key that names its alg is bound to that one; otherwise to each allowed fitting one.
    return public_keys(public, [alg] if alg is not None else allowed, kid)


def select(
    keys: Iterable[VerificationKey], kid: str | None, algorithm: str
) -> list[VerificationKey]:
    """Keys that may verify a token with this ``kid`` and ``alg`` header."""
    return [
        key
        for key in keys
        if key.algorithm == algorithm and (kid is None or key.kid is None or key.kid == kid)
    ]
