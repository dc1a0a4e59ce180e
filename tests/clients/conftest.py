"""Fixtures of the client tests: one real server for the session, held-out digits."""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

import demo_models
from clients.live_gateway import (
    ROOT,
    STARTUP_TIMEOUT_S,
    TENSORGATE,
    Digits,
    LiveServer,
    free_port,
    pump,
)
from gateway.settings import AuthSettings
from gateway.tokens import mint_token, signing_key


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``tensorgate serve`` on the demo models with a secret made here, and a token for
    ``models:infer:digits`` signed with it; stopped (by its PID) after the session."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("server")
    secret = secrets.token_urlsafe(48)
    env = {**os.environ, "TENSORGATE_AUTH__SECRET": secret}
    # Minted in-process with the server's secret (tests/gateway/auth covers `tensorgate token`).
    token = mint_token(
        signing_key(AuthSettings(secret=SecretStr(secret))),
        subject="client-tests",
        scopes=["models:infer:digits"],
        ttl_s=3600,
    )
    command = [str(TENSORGATE), "serve", "--models", str(ROOT / "models"), "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=pump, args=(process.stderr, lines), daemon=True)
    reader.start()
    log: list[str] = []
    try:
        while True:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
            if line is None:
                pytest.fail("tensorgate serve exited during startup:\n" + "".join(log))
            log.append(line)
            if "Application startup complete" in line:
                break
        yield LiveServer(base_url=f"http://127.0.0.1:{port}", token=token)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        process.stderr.close()


@pytest.fixture(scope="session")
def digits() -> Digits:
    """Ten rows of the demo classifier's test split (it was never fit on them)."""
    _, x_test, _, y_test = demo_models.digits_split()
    return Digits(x_test[:10].tolist(), y_test[:10].tolist())
