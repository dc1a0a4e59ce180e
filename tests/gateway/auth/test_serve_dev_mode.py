"""End to end: ``tensorgate serve`` in dev mode prints a token; ``tensorgate token`` mints more."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.paths import DEMO_MODELS, TENSORGATE

STARTUP_TIMEOUT_S = 60
TOKEN_LINE = re.compile(r"^(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$")

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A ``tensorgate serve`` process; its stderr lines arrive on a queue."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [
                str(TENSORGATE),
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
                "--models",
                str(DEMO_MODELS),
            ],
            env=env,
            stdout=subprocess.PIPE,  # the access log
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # no controlling terminal, as under a service manager
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: str) -> list[str]:
        """Every output line up to and including the first that matches ``pattern``."""
        seen: list[str] = []
        while True:
            line = self.lines.get(timeout=STARTUP_TIMEOUT_S)  # a hang guard only
            if line is None:
                raise AssertionError("server exited:\n" + "\n".join(seen))
            seen.append(line)
            if re.search(pattern, line):
                return seen

    def stop(self) -> None:
        """Terminate our own process and wait for it."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of the server and CLI: a fresh state directory, no configured key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TENSORGATE_")}
    return {**clean, "TENSORGATE_AUTH__STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    """A dev-mode server on a free loopback port, stopped after the test."""
    running = Server(env, _free_port())
    yield running
    running.stop()


BODY = {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}]}


def test_dev_banner_token_and_cli_token_work(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    lines = server.wait_for("Application startup complete")
    log = "\n".join(lines)
    token_file = tmp_path / "state" / "dev-token"
    # The token is shown where a person looks, never in the log stream (issue 10).
    assert not [line for line in lines if "eyJ" in line]
    assert f"the admin token is in {token_file} (mode 0600)" in log
    assert token_file.stat().st_mode & 0o777 == 0o600
    banner = token_file.read_text().splitlines()
    assert any(f"{server.base}/docs" in line for line in banner)
    tokens = [m.group(1) for line in banner if (m := TOKEN_LINE.match(line.strip()))]
    assert len(tokens) == 1
    secret_file = tmp_path / "state" / "dev-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.read_text().strip() not in log + token_file.read_text()

    minted = subprocess.run(
        [str(TENSORGATE), "token", "--sub", "e2e", "--scope", "models:infer:digits"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()

    with httpx.Client(base_url=server.base, timeout=30) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.post("/v2/models/digits/infer", json=BODY).status_code == 401
        for token in (tokens[0], minted):
            response = client.post(
                "/v2/models/digits/infer",
                json=BODY,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
        refused = client.get("/v2/models/digits", headers={"Authorization": f"Bearer {minted}"})
        assert refused.status_code == 403
    server.wait_for(r'"subject":"e2e"')
