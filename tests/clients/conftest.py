"""Fixtures of the client tests: one real server for the session, held-out digits."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

import demo_models
from gateway.auth.minting import mint_token, signing_key
from gateway.settings import AuthSettings
from support.live_gateway import Digits, LiveServer
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """``tensorgate serve`` on the demo models with a secret made here, and a token for
    ``models:infer:digits`` signed with it; stopped (by its PID) after the session."""
    secret = secrets.token_urlsafe(48)
    # Minted in-process with the server's secret (tests/gateway/auth covers `tensorgate token`).
    token = mint_token(
        signing_key(AuthSettings(secret=SecretStr(secret))),
        subject="client-tests",
        scopes=["models:infer:digits"],
        ttl_s=3600,
    )
    args = ["--models", str(DEMO_MODELS)]
    with ServerProcess(args, env={"TENSORGATE_AUTH__SECRET": secret}) as server:
        yield LiveServer(base_url=server.base_url, token=token)


@pytest.fixture(scope="session")
def digits() -> Digits:
    """Ten rows of the demo classifier's test split (it was never fit on them)."""
    _, x_test, _, y_test = demo_models.digits_split()
    return Digits(x_test[:10].tolist(), y_test[:10].tolist())
