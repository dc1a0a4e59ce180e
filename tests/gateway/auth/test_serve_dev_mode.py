"""End to end: ``tensorgate serve`` in dev mode prints a token; ``tensorgate token`` mints more."""

from __future__ import annotations

import os
import queue
import re
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


class Server:
    """A ``tensorgate serve --port 0`` process; its output lines arrive on a queue."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.workers = workers
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [
                str(TENSORGATE),
                "serve",
                "--port",
                "0",
                "--workers",
                str(workers),
                "--models",
                str(DEMO_MODELS),
                "--grpc-port",
                "0",  # the default, 8001, is one for the whole machine
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

    def wait_for(self, pattern: str, times: int = 1) -> list[str]:
        """Every output line up to the ``times``-th that matches ``pattern``."""
        seen: list[str] = []
        while times:
            line = self.lines.get(timeout=STARTUP_TIMEOUT_S)  # a hang guard only
            if line is None:
                raise AssertionError("server exited:\n" + "\n".join(seen))
            seen.append(line)
            times -= bool(re.search(pattern, line))
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


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def server(request: pytest.FixtureRequest, env: dict[str, str]) -> Iterator[Server]:
    """A dev-mode server on the port the kernel picks (one process, or a parent that binds
    the socket for two workers), stopped after the test."""
    running = Server(env, request.param)
    yield running
    running.stop()


BODY = {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}]}
ANNOUNCED = re.compile(
    r"tensorgate serving \S+ on (http://127\.0\.0\.1:(\d+)) \(Swagger UI: (\S+)\)"
)
UVICORN = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


def _started(server: Server) -> list[str]:
    """The output until the server answers: one process announces its address and the
    dev token once it listens; a parent binds and announces first, then its workers start."""
    lines = server.wait_for("dev mode: no terminal")
    if server.workers > 1:
        lines += server.wait_for("Application startup complete", times=server.workers)
    return lines


def _token(env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TENSORGATE), "token", "--sub", "e2e", "--scope", "models:infer:digits"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_dev_token_file_and_cli_token_work_on_the_port_bound(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    lines = _started(server)
    log = "\n".join(lines)
    # --port 0: every address announced has the port the kernel gave (issue 19).
    assert "127.0.0.1:0" not in log
    [announced] = [m for line in lines if (m := ANNOUNCED.search(line))]
    base, port, docs = announced.groups()
    assert int(port) > 0
    assert docs == f"{base}/docs"
    uvicorn_lines = [m.group(1) for line in lines if (m := UVICORN.search(line))]
    assert uvicorn_lines == [base]
    token_file = tmp_path / "state" / "dev-token"
    # The token is shown where a person looks, never in the log stream (issue 10).
    assert not [line for line in lines if "eyJ" in line]
    assert (
        f"an admin token (valid 60 min) is in {token_file} (mode 0600): "
        f"TOKEN=$(cat {token_file}), or paste it in Swagger UI's Authorize at {base}/docs"
    ) in log
    assert token_file.stat().st_mode & 0o777 == 0o600
    # The file holds the token alone, so that TOKEN=$(cat .tensorgate/dev-token) works.
    dev_token = token_file.read_text()
    assert TOKEN_LINE.match(dev_token.removesuffix("\n"))
    secret_file = tmp_path / "state" / "dev-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.read_text().strip() not in log + dev_token

    minted = _token(env)
    assert minted.stderr == ""  # the server made the secret: nothing to warn about

    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.post("/v2/models/digits/infer", json=BODY).status_code == 401
        for token in (dev_token.strip(), minted.stdout.strip()):
            response = client.post(
                "/v2/models/digits/infer",
                json=BODY,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
        refused = client.get(
            "/v2/models/digits", headers={"Authorization": f"Bearer {minted.stdout.strip()}"}
        )
        assert refused.status_code == 403
    server.wait_for(r'"subject":"e2e"')


@pytest.mark.parametrize("server", [1], indirect=True, ids=["one-process"])
def test_a_token_minted_in_another_directory_warns_and_is_refused(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    lines = _started(server)
    [announced] = [m for line in lines if (m := ANNOUNCED.search(line))]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    default_state = {k: v for k, v in env.items() if k != "TENSORGATE_AUTH__STATE_DIR"}
    minted = _token(default_state, cwd=elsewhere)
    assert (
        f"warning: created a new dev secret in {elsewhere / '.tensorgate' / 'dev-secret'}"
        in minted.stderr
    )
    assert "answers this token 401 'token signature is invalid'" in minted.stderr
    with httpx.Client(base_url=announced.group(1), timeout=30) as client:
        response = client.post(
            "/v2/models/digits/infer",
            json=BODY,
            headers={"Authorization": f"Bearer {minted.stdout.strip()}"},
        )
    assert response.status_code == 401
    assert "signature is invalid" in response.json()["error"]
