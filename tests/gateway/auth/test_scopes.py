"""Scope rules: what a granted scope set allows, and how scope claims are read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.principal import Principal, infer_scope, parse_scopes
from gateway.errors import Forbidden

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=20)


def _principal(*scopes: str) -> Principal:
    return Principal(subject="s", scopes=frozenset(scopes))


@given(names)
def test_models_infer_covers_every_model(name: str) -> None:
    _principal("models:infer").require_infer(name)


@given(names, names)
def test_a_model_scope_covers_that_model_only(granted: str, asked: str) -> None:
    principal = _principal(infer_scope(granted))
    assert principal.allows(infer_scope(asked)) == (granted == asked)


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        ("models:read", "models:read", True),
        ("models:infer", "models:read", False),
        ("models:read", "models:infer:digits", False),
        ("admin", "models:read", False),  # admin does not imply the model scopes
        ("models:infer:digits", "models:infer", False),
        ("models", "models:read", False),
    ],
)
def test_scopes_do_not_leak(granted: str, needed: str, allowed: bool) -> None:
    assert _principal(granted).allows(needed) is allowed


def test_forbidden_names_the_missing_scope() -> None:
    with pytest.raises(Forbidden, match="models:read") as caught:
        _principal().require("models:read")
    assert caught.value.scope == "models:read"
    with pytest.raises(Forbidden) as caught:
        _principal("models:infer:mlp").require_infer("digits")
    assert caught.value.scope == "models:infer models:infer:digits"


@given(st.lists(names, max_size=5), st.lists(names, max_size=5))
def test_scope_and_scp_are_merged(scope: list[str], scp: list[str]) -> None:
    parsed = parse_scopes({"scope": " ".join(scope), "scp": scp})
    assert parsed == frozenset(scope) | frozenset(scp)


@pytest.mark.parametrize(
    "claims",
    [{"scope": 3}, {"scope": ["a", 1]}, {"scp": {"a": 1}}, {"scp": [None]}, {"scope": True}],
)
def test_malformed_scope_claims(claims: dict[str, object]) -> None:
    assert parse_scopes(claims) is None


def test_scp_as_a_string_and_no_scopes() -> None:
    assert parse_scopes({"scp": "a b"}) == frozenset({"a", "b"})
    assert parse_scopes({}) == frozenset()
