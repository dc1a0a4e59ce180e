"""Readiness flips on SIGTERM while the server still serves (``shutdown_delay_s``), and
poll mode picks up a version copied into the repository, on a real ``tensorgate serve``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess, serving

pytestmark = pytest.mark.e2e

GUARD_S = 30
DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
BODY = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}]}


def until(check: Callable[[], bool]) -> None:
    """Ask ``check`` again until it holds (guarded): each ask is a request to the server."""
    deadline = time.monotonic() + GUARD_S
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    (tmp_path / "m" / "1").mkdir(parents=True)
    shutil.copy(DIGITS, tmp_path / "m" / "1" / "model.onnx")
    return tmp_path


def test_readiness_is_503_at_once_on_sigterm_and_requests_are_served_meanwhile(
    repository: Path,
) -> None:
    env = {"TENSORGATE_AUTH__SECRET": TEST_SECRET, "TENSORGATE_SHUTDOWN_DELAY_S": "120"}
    with ServerProcess(["--models", str(repository)], env) as server:
        headers = {"Authorization": bearer(make_settings(repository))}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=GUARD_S) as http:
            assert http.get("/v2/health/ready").status_code == 200
            server.terminate()
            until(lambda: http.get("/v2/health/ready").status_code == 503)
            assert http.get("/v2/health/ready").json() == {
                "error": "server is not ready: it is shutting down"
            }
            # Within the delay the server still accepts connections and answers.
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=GUARD_S) as fresh:
            assert fresh.post("/v2/models/m/infer", json=BODY).status_code == 200
        started = time.monotonic()
        assert server.stop() == 0  # the second SIGTERM does not wait out the delay
        assert time.monotonic() - started < 60


def test_poll_mode_serves_a_version_copied_in(repository: Path) -> None:
    with serving(repository, "--repository-poll-s", "0.1") as server:
        headers = {"Authorization": bearer(make_settings(repository))}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=GUARD_S) as http:
            assert http.get("/v2/models/m/versions/2/ready").status_code == 404
            (repository / "m" / "2").mkdir()
            shutil.copy(DIGITS, repository / "m" / "2" / "model.onnx")
            until(lambda: http.get("/v2/models/m/versions/2/ready").status_code == 200)
            answer = http.post("/v2/models/m/infer", json=BODY)
            assert answer.json()["model_version"] == "2"
            shutil.rmtree(repository / "m" / "1")
            until(lambda: http.get("/v2/models/m/versions/1/ready").status_code == 404)
            assert http.post("/v2/models/m/infer", json=BODY).status_code == 200
