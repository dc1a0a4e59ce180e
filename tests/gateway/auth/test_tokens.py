"""Minting tokens with the configured key, and reading durations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from gateway.auth.authenticator import Authenticator
from gateway.auth.keyring import build_key_ring
from gateway.auth.minting import NoSigningKey, mint_token, parse_duration, signing_key
from gateway.settings import AuthSettings
from support.authkit import KeyPair


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["", "s", "m", "h", "d"]))
def test_parse_duration(amount: int, unit: str) -> None:
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{amount}{unit}") == amount * factor
    assert parse_duration(f" {amount}{unit.upper()} ") == amount * factor


@pytest.mark.parametrize("text", ["", "0", "0h", "-5m", "1.5h", "1w", "h", "1h30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="positive duration"):
        parse_duration(text)


def _round_trip(auth: AuthSettings) -> tuple[str, frozenset[str]]:
    token = mint_token(
        signing_key(auth),
        subject="bob",
        scopes=["models:read", "models:infer:digits"],
        ttl_s=60,
        issuer=auth.issuer,
        audience=auth.audience,
    )
    authenticator = Authenticator.from_settings(auth, build_key_ring(auth))
    principal = asyncio.run(authenticator.authenticate(f"Bearer {token}"))
    return principal.subject, principal.scopes


def test_mint_with_the_secret_and_claims() -> None:
    auth = AuthSettings(secret=SecretStr("k" * 64), issuer="me", audience="you")
    assert _round_trip(auth) == ("bob", frozenset({"models:read", "models:infer:digits"}))


@pytest.mark.parametrize("key", ["rsa_key", "ec_key"])
def test_mint_with_a_private_key(key: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pair: KeyPair = request.getfixturevalue(key)
    path = tmp_path / "private.pem"
    path.write_bytes(pair.private_pem)
    auth = AuthSettings(private_key_file=path)
    assert signing_key(auth).algorithm == pair.algorithm
    assert "PRIVATE" not in repr(signing_key(auth))
    assert _round_trip(auth)[0] == "bob"


def test_verify_only_configurations_cannot_mint(public_key_file: Path, jwks_file: Path) -> None:
    for auth in (
        AuthSettings(public_key_file=public_key_file),
        AuthSettings(jwks_file=jwks_file),
        AuthSettings(jwks_url="https://idp.invalid/jwks.json"),
    ):
        with pytest.raises(NoSigningKey, match="identity provider"):
            signing_key(auth)
