"""``tensorgate token``: mint with the configured key, then call the API with the token."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.auth.dev_secret import load_or_create_dev_secret
from gateway.cli import main
from gateway.settings import AuthSettings, Settings
from support.paths import DEMO_MODELS


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local state directory, and no key in the environment."""
    for name in ("SECRET", "PUBLIC_KEY_FILE", "PRIVATE_KEY_FILE", "JWKS_FILE", "JWKS_URL"):
        monkeypatch.delenv(f"TENSORGATE_AUTH__{name}", raising=False)
    state = tmp_path / "state"
    monkeypatch.setenv("TENSORGATE_AUTH__STATE_DIR", str(state))
    return state


def _mint(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", *args]) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2
    return token


async def test_mint_then_call(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = _mint(capsys, "--sub", "ci", "--scope", "models:infer:digits", "--ttl", "5m")
    assert (state_dir / "dev-secret").exists()
    # The server started afterwards (same state directory) reuses the same dev secret.
    secret = load_or_create_dev_secret(state_dir).secret
    settings = Settings(model_repository=DEMO_MODELS, auth=AuthSettings(secret=secret))
    body = {
        "inputs": [
            {
                "name": "pixels",
                "datatype": "FP32",
                "shape": [1, 64],
                "data": np.zeros(64).tolist(),
            }
        ]
    }
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"Authorization": f"Bearer {token}"}
            ok = await client.post("/v2/models/digits/infer", json=body, headers=headers)
            assert ok.status_code == 200, ok.text
            assert {o["name"] for o in ok.json()["outputs"]} == {"label", "probabilities"}
            other = await client.post("/v2/models/mlp/infer", json=body, headers=headers)
            assert other.status_code == 403
            metadata = await client.get("/v2/models/digits", headers=headers)
            assert metadata.status_code == 403  # models:read was not asked for


def test_token_claims_follow_the_flags(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = _mint(capsys, "--sub", "svc", "--scope", "models:read admin", "--ttl", "2h")
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "svc"
    assert claims["scope"] == "models:read admin"
    assert claims["exp"] - claims["iat"] == 7200


def test_a_new_dev_secret_is_announced_with_its_absolute_path(
    state_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TENSORGATE_AUTH__STATE_DIR", "relative-state")
    assert main(["token"]) == 0
    first = capsys.readouterr()
    assert first.out.count(".") == 2  # the token alone on standard output
    secret = tmp_path / "relative-state" / "dev-secret"
    assert first.err.startswith(f"tensorgate token: warning: created a new dev secret in {secret},")
    assert "TENSORGATE_AUTH__STATE_DIR" in first.err
    assert main(["token"]) == 0
    assert capsys.readouterr().err == ""  # the secret exists now: nothing to say


def test_bad_ttl_is_a_usage_error(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["token", "--ttl", "soon"])
    assert caught.value.code == 2
    assert "positive duration" in capsys.readouterr().err


def test_public_key_only_says_tokens_come_from_the_idp(
    state_dir: Path,
    public_key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TENSORGATE_AUTH__PUBLIC_KEY_FILE", str(public_key_file))
    assert main(["token", "--sub", "x"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "identity provider" in captured.err
    assert not state_dir.exists()  # no dev secret is made when a key is configured


def _captured_serve(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, list[Any]]:
    # Only the network server is replaced: the app handed to it is the real one.
    apps: list[Any] = []
    monkeypatch.setattr(
        "gateway.serving.run.serve_one", lambda app, _options, _on_listening: apps.append(app)
    )
    return main(["serve", "--models", str(DEMO_MODELS), "--workers", "1", *args]), apps


async def test_serve_no_auth_flag_opens_routes_and_warns(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    status, apps = _captured_serve(monkeypatch, "--no-auth")
    assert status == 0
    assert not await asyncio.to_thread(state_dir.exists)  # no dev secret without auth
    with caplog.at_level(logging.WARNING, logger="gateway"):
        async with LifespanManager(apps[0]) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/v2/models/digits")).status_code == 200
    assert "AUTHENTICATION IS DISABLED" in caplog.text


def test_serve_refuses_an_unusable_key(
    state_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TENSORGATE_AUTH__SECRET", "too-short")
    status, apps = _captured_serve(monkeypatch)
    assert status == 2
    assert apps == []
    assert "needs at least 32" in caplog.text
    assert "too-short" not in caplog.text


def test_openapi_export_needs_no_usable_key(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORGATE_AUTH__PUBLIC_KEY_FILE", str(tmp_path / "absent.pem"))
    output = tmp_path / "openapi.json"
    assert main(["openapi", "--models", str(DEMO_MODELS), "--output", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert not state_dir.exists()
