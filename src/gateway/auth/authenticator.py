"""JWT bearer authentication: an ``Authorization`` header value in, a ``Principal`` out.

Transport-agnostic on purpose: the FastAPI dependency and any leaner ASGI layer call
``Authenticator.authenticate(header_value)`` and map the domain errors themselves
(``bearer_challenge`` builds the RFC 6750 ``WWW-Authenticate`` value for them).

python-jose verifies signatures, always with key objects bound to one algorithm; the
header and claims checks are ours because python-jose lets a token without ``aud`` pass
when an audience is given and checks ``iss`` only when asked (issue 4).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.auth.keyring import KeyRing
from gateway.auth.keys import SUPPORTED_ALGORITHMS, VerificationKey
from gateway.auth.principal import Principal, parse_scopes
from gateway.errors import Forbidden, Unauthorized
from gateway.settings import AuthSettings

logger = logging.getLogger(__name__)

REALM = "tensorgate"
# Verified tokens remembered at once; bounded so that many distinct callers cost memory
# in proportion to this, not to the traffic.
_CACHE_SIZE = 4096
# Compact JWS serialisation: three base64url segments (RFC 7515 section 7.1).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Characters RFC 6750 section 3 allows inside error_description and scope.
_UNSAFE_IN_CHALLENGE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, challenge="invalid_token")


def bearer_challenge(error: Unauthorized | Forbidden) -> str:
    """The ``WWW-Authenticate`` value for a 401 or 403 (RFC 6750 section 3)."""
    parts = [f'realm="{REALM}"']
    code = "insufficient_scope" if isinstance(error, Forbidden) else error.challenge
    if code is not None:
        description = _UNSAFE_IN_CHALLENGE.sub("'", error.message)
        parts += [f'error="{code}"', f'error_description="{description}"']
    if isinstance(error, Forbidden) and error.scope:
        parts.append(f'scope="{_UNSAFE_IN_CHALLENGE.sub("", error.scope)}"')
    return "Bearer " + ", ".join(parts)


class Authenticator:
    """Checks bearer tokens against a key ring and the configured claim rules."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 30.0,
        max_token_bytes: int = 8192,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        cache_s: float = 0.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_token_bytes = max_token_bytes
        self.enabled = enabled
        self.clock = clock
        self.cache_s = cache_s
        # token -> (principal, forget-after time); insertion order evicts the oldest.
        # token -> (principal, remembered until, valid from, valid until): the window its
        # time claims allow, so that a request inside it costs two comparisons.
        self._verified: dict[str, tuple[Principal, float, float, float]] = {}

    @classmethod
    def from_settings(
        cls, auth: AuthSettings, keys: KeyRing, clock: Callable[[], float] = time.time
    ) -> Authenticator:
        """An authenticator with the claim rules of ``auth``."""
        return cls(
            keys,
            issuer=auth.issuer,
            audience=auth.audience,
            leeway_s=auth.leeway_s,
            max_token_bytes=auth.max_token_bytes,
            enabled=auth.enabled,
            clock=clock,
            cache_s=auth.verified_token_cache_s,
        )

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller of a request with this ``Authorization`` header; raises ``Unauthorized``."""
        if not self.enabled:
            return Principal.anonymous()
        # A token verified moments ago is looked up before any parsing: it passed it all.
        token = authorization[7:] if authorization and authorization[:7] == "Bearer " else ""
        remembered = self._verified.get(token)
        if remembered is None:
            token = self._bearer_token(authorization)
            remembered = self._verified.get(token)
        if remembered is not None:
            # The signature was verified moments ago; time-based claims change, recheck.
            principal, until, valid_from, valid_until = remembered
            now = self.clock()
            if valid_from <= now <= valid_until and now < until:
                return principal
            if now < until:
                self._check_times(principal.claims)  # raises, naming the claim
                return principal
        principal = await self._verify_token(token)
        self._remember(token, principal)
        return principal

    async def _verify_token(self, token: str) -> Principal:
        algorithm, kid = _header(token)
        payload = await self._verified_payload(token, algorithm, kid)
        claims = _claims(payload)
        self._check_times(claims)
        self._check_issuer_audience(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _invalid("token has no 'sub' claim (a non-empty string naming the caller)")
        scopes = parse_scopes(claims)
        if scopes is None:
            raise _invalid("'scope' must be a space-separated string, 'scp' a list of strings")
        return Principal(subject=subject, scopes=scopes, claims=claims)

    def _remember(self, token: str, principal: Principal) -> None:
        """Keep a verified token for ``cache_s`` seconds, at most ``_CACHE_SIZE`` of them."""
        if self.cache_s <= 0:
            return
        if len(self._verified) >= _CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        claims, leeway = principal.claims, self.leeway_s
        exp = _numeric_date(claims, "exp")
        starts = [d for name in ("nbf", "iat") if (d := _numeric_date(claims, name)) is not None]
        valid_from = max(starts, default=-math.inf) - leeway
        valid_until = math.inf if exp is None else exp + leeway
        self._verified[token] = (principal, self.clock() + self.cache_s, valid_from, valid_until)

    def _bearer_token(self, authorization: str | None) -> str:
        if authorization is None or not authorization.strip():
            raise Unauthorized(
                "missing bearer token: send 'Authorization: Bearer <token>'", challenge=None
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized(
                "the Authorization scheme must be Bearer ('Authorization: Bearer <token>')",
                challenge="invalid_request",
            )
        token = token.strip()
        if not token:
            raise Unauthorized("the bearer token is empty", challenge="invalid_request")
        # Cap before any decoding: parsing cost and python-jose's recursion stay bounded.
        if len(token) > self.max_token_bytes:
            raise _invalid(f"token is longer than the limit of {self.max_token_bytes} bytes")
        if not _COMPACT_JWS.fullmatch(token):
            raise _invalid("token is not a JWT (three base64url segments separated by dots)")
        if token.endswith("."):
            raise _invalid("token has no signature")
        return token

    async def _verified_payload(self, token: str, algorithm: str, kid: str | None) -> bytes:
        candidates = await self.keys.keys_for(kid, algorithm)
        if not candidates:
            raise _invalid(
                f"no configured key verifies {algorithm} tokens"
                + (" with this key id" if kid is not None else "")
            )
        for key in candidates:
            payload = _verify(key, token)
            if payload is not None:
                return payload
        raise _invalid("token signature is invalid")

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise _invalid("token has no 'exp' claim; tokens must expire")
        if now > exp + self.leeway_s:
            raise _invalid("token has expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and now + self.leeway_s < nbf:
            raise _invalid("token is not valid yet ('nbf' is in the future)")
        iat = _numeric_date(claims, "iat")
        if iat is not None and now + self.leeway_s < iat:
            raise _invalid("token was issued in the future ('iat')")

    def _check_issuer_audience(self, claims: Mapping[str, Any]) -> None:
        if self.issuer is not None and claims.get("iss") != self.issuer:
            what = "has no 'iss' claim" if "iss" not in claims else "has the wrong issuer"
            raise _invalid(f"token {what}; expected issuer '{self.issuer}'")
        if self.audience is not None:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud
            if not isinstance(audiences, list) or self.audience not in audiences:
                what = "has no 'aud' claim" if aud is None else "is not for this audience"
                raise _invalid(f"token {what}; expected audience '{self.audience}'")


def _verify(key: VerificationKey, token: str) -> bytes | None:
    try:
        return key.verify(token)
    except Exception:
        # python-jose raises JWSError, JWKError, ValueError, TypeError and more: all mean
        # "not verified by this key", never a server error.
        return None


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (binascii.Error, ValueError, RecursionError):
        raise _invalid(f"token {what} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise _invalid(f"token {what} is not a JSON object")
    return value


def _header(token: str) -> tuple[str, str | None]:
    header = _json_object(token.partition(".")[0], "header")
    algorithm, kid = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str) or algorithm.lower() == "none":
        raise _invalid("token is unsigned ('alg' is missing or 'none')")
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise _invalid(f"token algorithm is not one of {sorted(SUPPORTED_ALGORITHMS)}")
    if "crit" in header:
        # RFC 7515 section 4.1.11: unknown critical extensions must be rejected.
        raise _invalid("token header has critical extensions this server does not support")
    if kid is not None and not isinstance(kid, str):
        raise _invalid("token header 'kid' is not a string")
    return algorithm, kid


def _claims(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        raise _invalid("token payload is not JSON") from None
    if not isinstance(value, dict):
        raise _invalid("token payload is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"token claim '{name}' is not a number of seconds since the epoch")
    return float(value)
