"""The remote backend's rules, in-process: upstreams are httpx mock transports that answer
like an Open Inference Protocol server or fail the way networks and servers do. The real
thing (tensorgate upstream processes, a replica killed under load) is in
tests/e2e/test_remote_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from backends.base import CALL_TIMEOUT_S, ModelSignature, TensorSpec
from backends.errors import InferenceError, ModelLoadError
from backends.oip_client import BINARY_HEADER
from backends.remote import RemoteBackend, RemoteOptions

A, B = "http://a:8000", "http://b:8000"
SIGNATURE = ModelSignature(
    inputs=(TensorSpec("x", np.dtype(np.float32), (None, 2)),),
    outputs=(TensorSpec("x", np.dtype(np.float32), (None, 2)),),
)
BATCH = {"x": np.arange(6, dtype=np.float32).reshape(3, 2)}
Handler = Callable[[httpx.Request], httpx.Response]


def echo(request: httpx.Request) -> httpx.Response:
    """An upstream answering with its inputs as outputs, in the wire format asked for."""
    if request.url.path == "/v2/health/ready":
        return httpx.Response(200, json={"ready": True})
    body = request.read()
    length = int(request.headers.get(BINARY_HEADER, len(body)))
    document = orjson.loads(body[:length])
    document["outputs"] = document.pop("inputs")
    header = orjson.dumps(document)
    if BINARY_HEADER in request.headers:
        return httpx.Response(
            200, content=header + body[length:], headers={BINARY_HEADER: str(len(header))}
        )
    return httpx.Response(200, content=header)


def failing(error: type[Exception]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/health/ready":
            return httpx.Response(200)
        raise error("simulated", request=request)  # type: ignore[call-arg]

    return handler


def answering(status: int, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/health/ready":
            return httpx.Response(200)
        return httpx.Response(status, json={"error": f"upstream says {status}"}, headers=headers)

    return handler


class Counting:
    """Wraps a handler and counts inference calls."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/infer"):
            self.calls += 1
        return self.handler(request)


def backend(handlers: dict[str, Handler], **options: Any) -> RemoteBackend:
    settings = RemoteOptions(urls=tuple(handlers), model="m", **options)
    transports = {url: httpx.MockTransport(h) for url, h in handlers.items()}
    return RemoteBackend(settings, SIGNATURE, {"authorization": "Bearer t"}, True, transports)


@pytest.mark.parametrize("wire", ["binary", "json"])
async def test_a_batch_goes_up_and_comes_back(wire: str) -> None:
    remote = backend({A: echo}, wire=wire)
    outputs = await remote.infer(BATCH)
    np.testing.assert_array_equal(outputs["x"], BATCH["x"])
    assert remote.metadata["upstream"] == A
    await remote.close()


async def test_a_batch_that_never_reached_a_replica_goes_to_another() -> None:
    first, second = Counting(failing(httpx.ConnectError)), Counting(echo)
    remote = backend({A: first, B: second})
    for _ in range(4):
        await remote.infer(BATCH)
    assert second.calls == 4  # every batch answered, the ones tried on A included
    assert first.calls >= 1
    await remote.close()


async def test_a_batch_sent_and_broken_off_is_a_502_and_never_resent() -> None:
    first, second = Counting(failing(httpx.ReadError)), Counting(echo)
    remote = backend({A: first, B: second})
    outcomes = []
    for _ in range(2):  # A's turn comes in one of the two
        try:
            await remote.infer(BATCH)
            outcomes.append("ok")
        except InferenceError as exc:
            outcomes.append(f"{exc.kind}: {exc}")
    assert sorted(outcomes) == [
        "BadGateway: http://a:8000 broke off the call: ReadError: simulated",
        "ok",
    ]
    assert first.calls == 1
    assert second.calls == 1
    await remote.close()


async def test_when_every_replica_refuses_the_answer_names_each_state() -> None:
    remote = backend({A: failing(httpx.ConnectError), B: answering(503)}, failure_threshold=1)
    with pytest.raises(InferenceError) as raised:
        await remote.infer(BATCH)
    assert raised.value.kind == "UpstreamUnavailable"
    message = str(raised.value)
    assert "http://a:8000: open (ConnectError: simulated)" in message
    assert "http://b:8000: open (503 upstream says 503)" in message
    await remote.close()


async def test_an_upstream_with_a_full_queue_is_busy_not_broken() -> None:
    remote = backend({A: answering(503, {"retry-after": "1"})}, failure_threshold=1)
    for _ in range(3):
        with pytest.raises(InferenceError, match="no upstream replica can take the batch"):
            await remote.infer(BATCH)
    assert "closed" in remote._replicas.describe()  # its circuit never opened
    await remote.close()


@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (answering(500), "BadGateway"),
        (answering(400), "BadGateway"),
        (answering(504), "DeadlineExceeded"),
        (failing(httpx.ReadTimeout), "DeadlineExceeded"),
        (lambda request: httpx.Response(200, content=b"not json"), "BadGateway"),
    ],
)
async def test_upstream_failures_have_kinds_the_gateway_maps(handler: Handler, kind: str) -> None:
    remote = backend({A: handler})
    with pytest.raises(InferenceError) as raised:
        await remote.infer(BATCH)
    assert raised.value.kind == kind
    assert A in str(raised.value)
    await remote.close()


async def test_the_batch_deadline_travels_upstream() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-request-timeout-ms", ""))
        return echo(request)

    remote = backend({A: handler})
    token = CALL_TIMEOUT_S.set(0.25)
    try:
        await remote.infer(BATCH)
    finally:
        CALL_TIMEOUT_S.reset(token)
    assert 0 < int(seen[0]) <= 250
    token = CALL_TIMEOUT_S.set(0.0)
    try:
        with pytest.raises(InferenceError, match="deadline passed before the call"):
            await remote.infer(BATCH)
    finally:
        CALL_TIMEOUT_S.reset(token)
    await remote.close()


async def test_a_replica_that_is_not_ready_is_left_out_until_it_is() -> None:
    ready = {"a": False}
    checks: dict[bool, asyncio.Event] = {False: asyncio.Event(), True: asyncio.Event()}
    seen: list[bool] = []

    def a(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/health/ready":
            # A second check with the same verdict means the first one was recorded.
            if seen and seen[-1] == ready["a"]:
                checks[ready["a"]].set()
            seen.append(ready["a"])
            return httpx.Response(200 if ready["a"] else 503)
        return echo(request)

    first, second = Counting(a), Counting(echo)
    remote = backend({A: first, B: second}, health_interval_s=0.01)
    await remote.infer(BATCH)
    await asyncio.wait_for(checks[False].wait(), 5)
    before = first.calls
    for _ in range(4):
        await remote.infer(BATCH)
    assert first.calls == before
    ready["a"] = True
    await asyncio.wait_for(checks[True].wait(), 5)
    for _ in range(4):
        await remote.infer(BATCH)
    assert first.calls > before
    await remote.close()
    with pytest.raises(InferenceError, match="closed"):
        await remote.infer(BATCH)


def metadata_of(width: int) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer from-env"
        tensor = {"name": "x", "datatype": "FP32", "shape": [-1, width]}
        return httpx.Response(200, json={"name": "m", "inputs": [tensor], "outputs": [tensor]})

    return handler


def by_host(handlers: dict[str, Handler]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: handlers[request.url.host](request))


def test_load_reads_the_signature_every_replica_agrees_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTREAM_TOKEN", "from-env")
    options = RemoteOptions(urls=(A, B), model="m", token_env="UPSTREAM_TOKEN")
    loaded = RemoteBackend.load(options, by_host({"a": metadata_of(2), "b": metadata_of(2)}))
    assert loaded.signature.inputs[0].shape == (None, 2)
    with pytest.raises(ModelLoadError, match="upstreams disagree on the signature of m"):
        RemoteBackend.load(options, by_host({"a": metadata_of(2), "b": metadata_of(3)}))


def test_load_needs_one_replica_and_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_TOKEN", "from-env")
    options = RemoteOptions(urls=(A, B), model="m", token_env="UPSTREAM_TOKEN")
    down = failing(httpx.ConnectError)
    half = RemoteBackend.load(options, by_host({"a": down, "b": metadata_of(2)}))
    assert half.signature.inputs[0].name == "x"  # one replica answering is enough
    with pytest.raises(ModelLoadError, match="no upstream answered the model's metadata") as raised:
        RemoteBackend.load(options, by_host({"a": down, "b": answering(404)}))
    assert A in str(raised.value)
    assert B in str(raised.value)
    monkeypatch.delenv("UPSTREAM_TOKEN")
    with pytest.raises(ModelLoadError, match="UPSTREAM_TOKEN is not set"):
        RemoteBackend.load(options, by_host({"a": metadata_of(2), "b": metadata_of(2)}))


def test_a_token_file_is_read_and_a_missing_one_named(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-env\n")
    options = RemoteOptions(urls=(A,), model="m", token_file=str(token))
    assert RemoteBackend.load(options, by_host({"a": metadata_of(2)})).signature.inputs
    missing = RemoteOptions(urls=(A,), model="m", token_file=str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match=r"remote\.token_file: cannot read it"):
        RemoteBackend.load(missing, by_host({"a": metadata_of(2)}))
