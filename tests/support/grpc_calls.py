"""For end-to-end gRPC tests: a server with its gRPC port, tritonclient inputs, the
access-log lines of chosen calls, and /metrics samples."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import tritonclient.grpc as triton

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.scrape import Samples, parse_samples, sample
from support.server_process import ServerProcess
from support.workers import free_port

GUARD_S = 60.0  # hang guard only
TOKEN = bearer(make_settings(DEMO_MODELS))  # every scope, admin included


def auth(token: str = TOKEN, request_id: str | None = None) -> dict[str, str]:
    """gRPC metadata: the token under a lower-case key (gRPC refuses upper case)."""
    headers = {"authorization": token}
    if request_id is not None:
        headers["x-request-id"] = request_id
    return headers


class Served:
    """A server and where to reach it over each transport."""

    def __init__(self, process: ServerProcess, grpc_port: int) -> None:
        self.process = process
        self.grpc_port = grpc_port
        self.url = f"127.0.0.1:{grpc_port}"

    def client(self, **options: Any) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(self.url, **options)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.process.base_url, headers={"Authorization": TOKEN}, timeout=GUARD_S
        )


def serve(root: Path, *args: str, **env: str) -> tuple[ServerProcess, int]:
    """``tensorgate serve`` of ``root`` on a free gRPC port (not started: a context manager)."""
    port = free_port()
    process = ServerProcess(
        ["--models", str(root), "--log-level", "info", "--grpc-port", str(port), *args],
        {"TENSORGATE_AUTH__SECRET": TEST_SECRET, **env},
    )
    return process, port


def tensor(name: str, array: np.ndarray, datatype: str) -> triton.InferInput:
    made = triton.InferInput(name, list(array.shape), datatype)
    made.set_data_from_numpy(array)  # raw_input_contents, the client's default
    return made


def slow_input() -> triton.InferInput:
    """The input of ``support.onnx_models.slow_model``: one FP32 zero."""
    return tensor("x", np.zeros((1, 1), np.float32), "FP32")


def access_lines(server: ServerProcess, request_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The JSON access-log line of each request id, waiting (guarded) for those not yet
    written: the server writes a call's line once it has answered it."""
    found: dict[str, dict[str, Any]] = {}
    wanted = set(request_ids)

    def take(line: str) -> None:
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("request_id") in wanted:
                found[record["request_id"]] = record

    for line in server.lines:
        take(line)
    while missing := wanted - found.keys():
        alternatives = "|".join(re.escape(request_id) for request_id in sorted(missing))
        take(server.wait_for(re.compile(rf'"request_id":"({alternatives})"'), GUARD_S).string)
    return found


async def samples(http: httpx.AsyncClient) -> Samples:
    """Every sample of the server's ``/metrics`` (``http`` has its base URL and a token)."""
    return parse_samples((await http.get("/metrics")).text)


async def queue_depth(http: httpx.AsyncClient, model: str) -> float:
    """Requests waiting in the queue of ``model`` version 1."""
    return sample(await samples(http), "tensorgate_queue_depth", model=model, version="1")


async def until_queued(http: httpx.AsyncClient, model: str, depth: int) -> None:
    """Ask /metrics until ``model`` version 1's queue holds ``depth`` requests (guarded)."""
    deadline = time.monotonic() + GUARD_S
    while await queue_depth(http, model) != depth:
        assert time.monotonic() < deadline, f"{model}'s queue never held {depth} requests"
