"""The access log: one JSON (or text) line per request, request ids, escaping, batching."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import given
from hypothesis import strategies as st

from gateway.api.access_log import AccessLog
from gateway.api.app import create_app
from gateway.api.exchange import Exchange, begin_exchange
from gateway.auth.principal import ADMIN, MODELS_INFER, MODELS_READ
from gateway.batching.observer import BatchTrace
from support.app import bearer, make_settings
from support.fake_backend import FakeLoader

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def scope(path: str = "/v2/x", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """A minimal HTTP scope."""
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": headers or [],
        "client": ("10.0.0.7", 51234),
    }


class Sink:
    """Collects what the access log writes, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.writes.append(data)

    def lines(self) -> list[str]:
        return b"".join(self.writes).decode().splitlines()


def test_a_json_line_holds_every_field() -> None:
    sink = Sink()
    log = AccessLog("json", sink)
    request = scope(headers=[(b"x-request-id", b"abc-1"), (b"traceparent", TRACEPARENT.encode())])
    exchange = begin_exchange(request)
    exchange.status, exchange.subject, exchange.model, exchange.version = 200, "svc", "m", "2"
    exchange.trace = BatchTrace()
    exchange.trace.started(0.0015, 8)
    log.record(request, exchange, 0.0042)
    [line] = sink.lines()
    record = json.loads(line)
    assert record.pop("time").endswith("Z")
    assert record == {
        "request_id": "abc-1",
        "method": "POST",
        "path": "/v2/x",
        "status": 200,
        "latency_ms": 4.2,
        "client": "10.0.0.7:51234",
        "subject": "svc",
        "model": "m",
        "version": "2",
        "queue_ms": 1.5,
        "batch_size": 8,
        "traceparent": TRACEPARENT,
        "error": None,
    }


@given(st.text(max_size=200))
def test_whatever_a_client_sends_stays_on_one_line(text: str) -> None:
    for fmt in ("json", "text"):
        sink = Sink()
        request = scope(path="/" + text)
        exchange = begin_exchange(request)
        exchange.subject = text
        exchange.failed(text)
        AccessLog(fmt, sink).record(request, exchange, 0.001)
        written = b"".join(sink.writes)
        assert written.count(b"\n") == 1
        assert written.endswith(b"\n")
        if fmt == "json":
            json.loads(written)


def test_the_text_form_is_readable_and_escaped() -> None:
    sink = Sink()
    request = scope(path="/v2/models/m\nFORGED/infer")
    exchange = begin_exchange(request)
    exchange.status = 404
    AccessLog("text", sink).record(request, exchange, 0.002)
    [line] = sink.lines()
    assert " 10.0.0.7:51234 POST /v2/models/m\\x0aFORGED/infer 404 2.00ms id=" in line


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"req-42", True),
        (b"a" * 128, True),
        (b"a" * 129, False),
        (b"has space", False),
        (b"new\nline", False),
        (b"", False),
    ],
)
def test_a_client_request_id_is_kept_only_when_short_and_plain(sent: bytes, kept: bool) -> None:
    exchange = begin_exchange(scope(headers=[(b"x-request-id", sent)]))
    assert (exchange.request_id == sent) is kept
    assert len(exchange.request_id) in ((len(sent),) if kept else (16,))


def test_a_malformed_traceparent_is_dropped() -> None:
    bad = TRACEPARENT.replace("-01", "-zz").encode()
    assert begin_exchange(scope(headers=[(b"traceparent", bad)])).traceparent is None


async def test_lines_of_one_loop_turn_go_out_together_in_pipe_buf_pieces() -> None:
    sink = Sink()
    log = AccessLog("json", sink)
    for n in range(200):
        log.record(scope(path=f"/v2/{n}"), Exchange(b"id", None), 0.001)
    assert sink.writes == []  # written at the end of the loop turn, not line by line
    await asyncio.sleep(0)
    assert 1 < len(sink.writes) < 20
    assert all(len(w) <= 4096 and w.endswith(b"\n") for w in sink.writes)
    assert [json.loads(line)["path"] for line in sink.lines()] == [f"/v2/{n}" for n in range(200)]


def test_a_lone_surrogate_in_a_subject_is_written_escaped() -> None:
    sink = Sink()
    request = scope()
    exchange = begin_exchange(request)
    exchange.subject = "bad\ud800"
    AccessLog("json", sink).record(request, exchange, 0.001)
    assert json.loads(sink.lines()[0])["subject"] == "bad\\ud800"


async def test_every_request_gets_an_id_echoed_and_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "echo" / "1").mkdir(parents=True)
    (tmp_path / "echo" / "1" / "model.onnx").write_bytes(b"fake")
    settings = make_settings(tmp_path, access_log_format="json")
    app = create_app(settings, loader=FakeLoader())
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.0] * 4}]}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            token = {"Authorization": bearer(settings, subject="svc-a")}
            ok = await http.post(
                "/v2/models/echo/infer",
                json=body,
                headers={**token, "X-Request-ID": "trace-me-1", "traceparent": TRACEPARENT},
            )
            bad = await http.post("/v2/models/echo/infer", json={"inputs": []}, headers=token)
            health = await http.get("/v2/health/live")
            await asyncio.sleep(0)  # one loop turn: the lines are written at its end
    assert ok.headers["x-request-id"] == "trace-me-1"
    assert len(bad.headers["x-request-id"]) == 16
    assert health.headers["x-request-id"] != bad.headers["x-request-id"]
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    inference = by_id["trace-me-1"]
    assert (inference["status"], inference["model"], inference["version"]) == (200, "echo", "1")
    assert (inference["subject"], inference["batch_size"]) == ("svc-a", 1)
    assert inference["queue_ms"] >= 0
    assert inference["traceparent"] == TRACEPARENT
    refused = by_id[bad.headers["x-request-id"]]
    assert refused["status"] == 400
    assert refused["error"]
    assert by_id[health.headers["x-request-id"]]["path"] == "/v2/health/live"
    assert len(lines) == 3


# (method, path, scopes of the token or None for no token, extra headers, body, status)
ERROR_ANSWERS: list[tuple[str, str, tuple[str, ...] | None, dict[str, str], bytes, int]] = [
    ("POST", "/v2/repository/models/echo/unload", (MODELS_INFER,), {}, b"", 403),
    ("GET", "/v2/models/nope", (MODELS_READ,), {}, b"", 404),
    ("GET", "/v2/models/echo", None, {}, b"", 401),
    ("GET", "/no/such/route", None, {}, b"", 404),
    ("DELETE", "/v2/health/live", None, {}, b"", 405),
    ("GET", "/v2/models/echo/infer", (MODELS_INFER,), {}, b"", 405),
    ("POST", "/v2/repository/index", (MODELS_READ,), {}, b"x" * 2048, 413),
    ("POST", "/v2/repository/index", (MODELS_READ,), {"Content-Encoding": "br"}, b"{}", 400),
    ("POST", "/v2/repository/models/echo/load", (ADMIN,), {}, b"{not json", 400),
]


async def test_every_error_answer_logs_its_message(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "echo" / "1").mkdir(parents=True)
    (tmp_path / "echo" / "1" / "model.onnx").write_bytes(b"fake")
    settings = make_settings(tmp_path, access_log_format="json", max_request_body_bytes=1024)
    app = create_app(settings, loader=FakeLoader())
    answers = {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            for method, path, scopes, headers, body, status in ERROR_ANSWERS:
                if scopes is not None:
                    headers = {**headers, "Authorization": bearer(settings, scopes)}
                answer = await http.request(method, path, headers=headers, content=body)
                assert answer.status_code == status, (method, path, answer.text)
                answers[answer.headers["x-request-id"]] = (status, answer.json()["error"])
            await asyncio.sleep(0)  # one loop turn: the lines are written at its end
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    logged = {line["request_id"]: (line["status"], line["error"]) for line in lines}
    assert logged == answers
    assert all(error for _, error in logged.values())


async def test_the_access_log_can_be_turned_off(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(tmp_path, access_log=False), loader=FakeLoader())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            answer = await http.get("/v2/health/live")
            await asyncio.sleep(0)
    assert "x-request-id" in answer.headers
    assert capfd.readouterr().out == ""
