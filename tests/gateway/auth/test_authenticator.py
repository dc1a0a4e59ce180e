"""The Authenticator without HTTP: claims rules on an injected clock, and no crash on any input."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import string
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.auth.authenticator import Authenticator, bearer_challenge
from gateway.auth.keyring import KeyRing
from gateway.auth.keys import VerificationKey, secret_keys
from gateway.errors import Forbidden, Unauthorized
from support.authkit import b64, claims, forge, sign

SECRET = "s" * 64
NOW = 1_800_000_000.0


def _authenticator(**options: Any) -> Authenticator:
    keys = KeyRing(secret_keys(SECRET.encode(), ["HS256", "HS512"]))
    return Authenticator(keys, clock=lambda: NOW, **options)


def _timed(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"iss": None, "aud": None, "iat": int(NOW), "nbf": int(NOW)}
    return claims(**{**base, "exp": int(NOW) + 60, **overrides})


async def _check(auth: Authenticator, payload: dict[str, object], alg: str = "HS256") -> None:
    await auth.authenticate("Bearer " + sign(SECRET, alg, payload))


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        (_timed(exp=int(NOW) - 29), True),  # inside the 30 s leeway
        (_timed(exp=int(NOW) - 31), False),
        (_timed(nbf=int(NOW) + 29), True),
        (_timed(nbf=int(NOW) + 31), False),
        (_timed(iat=int(NOW) + 31), False),
        (_timed(exp=NOW + 0.5), True),  # NumericDate may be fractional
        (_timed(exp=True), False),  # a bool is not a number here
        (_timed(nbf="soon"), False),
        (_timed(exp=None), False),
    ],
)
async def test_time_claims_with_leeway(payload: dict[str, object], ok: bool) -> None:
    auth = _authenticator(leeway_s=30.0)
    if ok:
        await _check(auth, payload)
    else:
        with pytest.raises(Unauthorized):
            await _check(auth, payload)


async def test_issuer_and_audience_are_required_when_configured() -> None:
    auth = _authenticator(issuer="https://idp", audience="api")
    await _check(auth, _timed(iss="https://idp", aud="api"))
    await _check(auth, _timed(iss="https://idp", aud=["web", "api"]))
    for bad in (
        _timed(aud="api"),
        _timed(iss="https://idp"),
        _timed(iss="https://idp", aud=["web"]),
        _timed(iss="https://idp", aud={"api": 1}),
        _timed(iss=["https://idp"], aud="api"),
    ):
        with pytest.raises(Unauthorized):
            await _check(auth, bad)
    # Without configuration, iss and aud are not checked.
    await _check(_authenticator(), _timed(iss="anyone", aud="anything"))


async def test_every_allowed_algorithm_of_the_secret_works() -> None:
    principal = await _authenticator().authenticate(
        "Bearer " + sign(SECRET, "HS512", _timed(scope=None, scp="models:read admin"))
    )
    assert principal.scopes == {"models:read", "admin"}
    with pytest.raises(Unauthorized, match="HS384"):
        await _check(_authenticator(), _timed(), alg="HS384")


async def test_deep_nesting_in_a_signed_payload_is_a_401() -> None:
    # python-jose would raise RecursionError here; we must answer 401, never 500.
    header = b64(b'{"alg":"HS256"}')
    payload = b64(("[" * 100_000 + "]" * 100_000).encode())
    mac = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    auth = _authenticator(max_token_bytes=1_000_000)
    with pytest.raises(Unauthorized, match="payload"):
        await auth.authenticate(f"Bearer {header}.{payload}.{b64(mac)}")


async def test_disabled_authenticator_lets_anyone_in() -> None:
    principal = await _authenticator(enabled=False).authenticate(None)
    assert principal.unrestricted
    principal.require("admin")


_TOKEN_CHARS = string.ascii_letters + string.digits + "-_."


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=200),
        st.text(alphabet=_TOKEN_CHARS, max_size=300).map(lambda t: "Bearer " + t),
        st.builds(
            lambda h, p: "Bearer " + forge(h, p, "c2ln"),
            st.dictionaries(
                st.sampled_from(["alg", "kid", "typ", "crit"]),
                st.one_of(st.text(max_size=8), st.integers(), st.none(), st.just("HS256")),
            ),
            st.dictionaries(st.text(max_size=5), st.integers()),
        ),
    )
)
def test_any_header_is_a_principal_or_unauthorized(header: str | None) -> None:
    # Only Unauthorized may come out: anything else would be a 500.
    with pytest.raises(Unauthorized) as caught:
        asyncio.run(_authenticator().authenticate(header))
    assert caught.value.message
    assert len(bearer_challenge(caught.value)) < 400


_CHALLENGE_PARAMS = re.compile(r'[a-z_]+="[^"]*"(, [a-z_]+="[^"]*")*')


@given(st.text(max_size=200), st.none() | st.text(max_size=50))
@example(message="", scope=", ")  # once split the naive way inside the scope's quotes
def test_challenge_is_always_a_valid_header_value(message: str, scope: str | None) -> None:
    for error in (Unauthorized(message), Forbidden(message, scope=scope)):
        value = bearer_challenge(error)
        assert value.startswith('Bearer realm="tensorgate"')
        value.encode("ascii")
        # Quoted strings stay closed: the only quotes are the ones we put around values, so
        # the value is name="..." pairs and nothing else (a value may hold ", " itself).
        inner = value.removeprefix("Bearer ")
        assert _CHALLENGE_PARAMS.fullmatch(inner), inner


def test_json_helpers_reject_non_objects() -> None:
    token = forge(json.dumps([1, 2]), {"a": 1}, "c2ln")
    with pytest.raises(Unauthorized, match="not a JSON object"):
        asyncio.run(_authenticator().authenticate("Bearer " + token))


class _CountingKeyRing(KeyRing):
    """A key ring that counts how often a signature check asked it for keys."""

    lookups = 0

    async def keys_for(self, kid: str | None, algorithm: str) -> list[VerificationKey]:
        self.lookups += 1
        return await super().keys_for(kid, algorithm)


async def test_verified_tokens_are_remembered_but_time_rules_still_apply() -> None:
    now = [NOW]
    keys = _CountingKeyRing(secret_keys(SECRET.encode(), ["HS256"]))
    auth = Authenticator(keys, clock=lambda: now[0], cache_s=60.0, leeway_s=0.0)
    header = "Bearer " + sign(SECRET, "HS256", _timed(exp=int(NOW) + 30))
    first = await auth.authenticate(header)
    assert await auth.authenticate(header) is first
    assert keys.lookups == 1  # the second call skipped the signature check
    now[0] = NOW + 31  # past exp, still inside the cache lifetime
    with pytest.raises(Unauthorized, match="expired"):
        await auth.authenticate(header)


async def test_remembered_tokens_are_checked_again_after_the_cache_lifetime() -> None:
    now = [NOW]
    keys = _CountingKeyRing(secret_keys(SECRET.encode(), ["HS256"]))
    auth = Authenticator(keys, clock=lambda: now[0], cache_s=10.0)
    header = "Bearer " + sign(SECRET, "HS256", _timed(exp=int(NOW) + 600))
    await auth.authenticate(header)
    now[0] = NOW + 11
    await auth.authenticate(header)
    assert keys.lookups == 2


async def test_bad_tokens_are_never_remembered() -> None:
    keys = _CountingKeyRing(secret_keys(SECRET.encode(), ["HS256"]))
    auth = Authenticator(keys, clock=lambda: NOW, cache_s=60.0)
    forged = "Bearer " + sign("x" * 64, "HS256", _timed())
    for _ in range(2):
        with pytest.raises(Unauthorized, match="signature"):
            await auth.authenticate(forged)
    assert keys.lookups == 2


async def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    keys = _CountingKeyRing(secret_keys(SECRET.encode(), ["HS256"]))
    auth = Authenticator(keys, clock=lambda: NOW, cache_s=60.0)
    tokens = ["Bearer " + sign(SECRET, "HS256", _timed(sub=f"user-{n}")) for n in range(4097)]
    for token in tokens:
        await auth.authenticate(token)
    await auth.authenticate(tokens[-1])
    assert keys.lookups == 4097  # the newest is still remembered
    await auth.authenticate(tokens[0])
    assert keys.lookups == 4098  # the oldest was forgotten when the cache filled
