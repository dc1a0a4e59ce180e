"""Limits through the inference routes: the 429 and its headers, groups, in-flight slots
freed however a request ends, and rules changed by a model reload."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from jose import jwt

from gateway.api.app import create_app
from gateway.settings import LimitsSettings, Settings
from support.app import TEST_SECRET, bearer, make_settings, post_scope
from support.fake_backend import FakeLoader

GUARD_S = 10  # hang guard only
URL = "/v2/models/echo/infer"
TYPED_URL = "/models/echo/predict"


def body(tag: float = 1.0) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [tag] * 4}]}


@pytest.fixture
def fakes() -> FakeLoader:
    """One FakeBackend per model, kept by name."""
    return FakeLoader()


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def write_repository(root: Path, config: str = "{}\n") -> Path:
    for name in ("echo", "other"):
        (root / name / "1").mkdir(parents=True, exist_ok=True)
        (root / name / "1" / "model.onnx").write_bytes(b"fake")
        (root / name / "config.yaml").write_text(config if name == "echo" else "{}\n")
    return root


def token(subject: str, scopes: str = "models:infer models:read admin", **claims: Any) -> str:
    """A bearer token with extra claims (a tenant, a plan), signed with the tests' secret."""
    now = int(time.time())
    payload = {"sub": subject, "scope": scopes, "iat": now, "exp": now + 600, **claims}
    signed: str = jwt.encode(payload, TEST_SECRET, algorithm="HS256")
    return f"Bearer {signed}"


def limited_settings(root: Path, *rules: dict[str, Any], **overrides: Any) -> Settings:
    limits = LimitsSettings.model_validate({"rules": list(rules)})
    # 429s are paced like 503s (refusal_pacing_max_ms); the tests need not wait for it.
    return make_settings(root, limits=limits, refusal_pacing_max_ms=0, **overrides)


@asynccontextmanager
async def serving(
    settings: Settings, fakes: FakeLoader, clock: Clock | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(settings, fakes, limits_clock=clock or Clock())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = {"Authorization": bearer(settings)}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as client:
            yield client, manager.app  # type: ignore[misc]


async def statuses(client: httpx.AsyncClient, count: int, **headers: str) -> list[int]:
    return [
        (await client.post(URL, json=body(), headers=headers)).status_code for _ in range(count)
    ]


async def test_past_the_rate_a_429_names_the_rule_with_the_draft_headers(
    tmp_path: Path, fakes: FakeLoader, capfd: pytest.CaptureFixture[str]
) -> None:
    rule = {"name": "per-subject", "rate_per_s": 1, "burst": 2}
    settings = limited_settings(write_repository(tmp_path), rule, access_log_format="json")
    clock = Clock()
    async with serving(settings, fakes, clock) as (client, _):
        assert await statuses(client, 2) == [200, 200]
        clock.now += 0.25
        refused = await client.post(URL, json=body())
        typed = await client.post(TYPED_URL, json={"inputs": {"x": [[1.0] * 4]}})
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "rate limit 'per-subject' exceeded: 1 requests per second, burst 2, "
        "per subject; retry in 0.750 s"
    }
    assert refused.headers["retry-after"] == "1"
    # draft-ietf-httpapi-ratelimit-headers-11: Lists of one Item, a String and Integers.
    assert refused.headers["ratelimit-policy"] == '"per-subject";q=2;w=2'
    assert refused.headers["ratelimit"] == '"per-subject";r=0;t=1'
    assert refused.headers["content-type"] == "application/json"
    assert typed.status_code == 429  # one pipeline: the typed route is limited alike
    assert fakes.backends["echo"].batch_sizes == [1, 1]  # the refused never reached it
    series = 'tensorgate_rate_limited_total{kind="rate",model="echo",rule="per-subject"} 2.0'
    assert series in metrics
    counted = (
        'tensorgate_inference_requests_total{model="echo",protocol="http",'
        'status="429",version=""} 2.0'
    )
    assert counted in metrics
    logged = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    errors = [line["error"] for line in logged if line.get("status") == 429]
    assert len(errors) == 2
    assert all("'per-subject'" in error for error in errors)


async def test_an_answer_within_the_limits_carries_no_ratelimit_headers(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    settings = limited_settings(write_repository(tmp_path), {"name": "r", "rate_per_s": 5})
    async with serving(settings, fakes) as (client, _):
        answer = await client.post(URL, json=body())
    assert answer.status_code == 200
    assert not {"ratelimit", "ratelimit-policy", "retry-after"} & set(answer.headers)


async def test_a_concurrency_refusal_states_its_unit_and_no_window(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    settings = limited_settings(
        write_repository(tmp_path), {"name": "one-at-a-time", "concurrency": 1}
    )
    async with serving(settings, fakes) as (client, _):
        echo = fakes.backends["echo"]
        echo.hold = True
        running = asyncio.ensure_future(client.post(URL, json=body()))
        await asyncio.wait_for(echo.started.wait(), GUARD_S)
        refused = await client.post(URL, json=body())
        echo.release.set()
        assert (await running).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["ratelimit-policy"] == '"one-at-a-time";q=1;qu="concurrent-requests"'
    assert refused.headers["ratelimit"] == '"one-at-a-time";r=0;t=1'
    assert (
        "concurrency limit 'one-at-a-time' reached: 1 requests in flight per subject"
        in (refused.json()["error"])
    )
    assert 'kind="concurrency",model="echo",rule="one-at-a-time"} 1.0' in metrics


async def test_limits_per_group_by_claim_and_by_scope(tmp_path: Path, fakes: FakeLoader) -> None:
    rules = (
        {"name": "per-tenant", "key": "claim:tenant", "rate_per_s": 1, "burst": 2},
        {"name": "free-tier", "match": {"scopes": ["tier:free"]}, "rate_per_s": 1, "burst": 1},
    )
    settings = limited_settings(write_repository(tmp_path), *rules)
    async with serving(settings, fakes) as (client, _):
        alice = token("alice", tenant="acme")
        bob = token("bob", tenant="acme")
        carol = token("carol", tenant="globex")
        assert await statuses(client, 1, Authorization=alice) == [200]
        assert await statuses(client, 2, Authorization=bob) == [200, 429]  # acme's bucket
        assert await statuses(client, 2, Authorization=carol) == [200, 200]
        free = token("dave", "models:infer tier:free")
        assert await statuses(client, 2, Authorization=free) == [200, 429]
        refused = await client.post(URL, json=body(), headers={"Authorization": free})
        assert refused.headers["ratelimit-policy"] == '"free-tier";q=1;w=1'
        # No tenant claim, no free tier: neither rule applies.
        assert await statuses(client, 4, Authorization=token("erin")) == [200] * 4


async def test_a_model_rule_limits_that_model_alone(tmp_path: Path, fakes: FakeLoader) -> None:
    config = "limits:\n  - {name: echo-rate, rate_per_s: 1, burst: 1}\n"
    settings = limited_settings(write_repository(tmp_path, config))
    async with serving(settings, fakes) as (client, _):
        assert await statuses(client, 2) == [200, 429]
        other = await client.post("/v2/models/other/infer", json=body())
        assert other.status_code == 200
        refused = await client.post(URL, json=body())
        assert "rate limit 'echo-rate' of model 'echo' exceeded" in refused.json()["error"]


async def test_a_limit_changed_in_config_yaml_applies_once_reloaded(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    root = write_repository(tmp_path)
    config = root / "echo" / "config.yaml"
    settings = limited_settings(root)
    async with serving(settings, fakes) as (client, _):
        assert await statuses(client, 3) == [200] * 3  # no rule at all
        config.write_text("limits:\n  - {name: tight, rate_per_s: 1, burst: 2}\n")
        assert (await client.post("/v2/repository/models/echo/load")).status_code == 200
        assert await statuses(client, 3) == [200, 200, 429]
        config.write_text("limits:\n  - {name: tight, concurrency: 5}\n")
        assert (await client.post("/v2/repository/models/echo/load")).status_code == 200
        assert await statuses(client, 3) == [200] * 3  # the rate is gone
        config.write_text("limits:\n  - {name: tight, rate_per_s: 1, burst: 1, bad: 1}\n")
        failed = await client.post("/v2/repository/models/echo/load")
        assert failed.status_code == 400
        assert "config.yaml: limits[0].bad: Extra inputs" in failed.json()["error"]
        assert await statuses(client, 3) == [200] * 3  # a broken config changes nothing
        config.write_text("{}\n")
        assert (await client.post("/v2/repository/models/echo/load")).status_code == 200
        assert await statuses(client, 3) == [200] * 3


@pytest.mark.parametrize("ending", ["answer", "error", "invalid", "disconnect", "cancel"])
async def test_an_in_flight_slot_is_freed_however_the_request_ends(
    tmp_path: Path, fakes: FakeLoader, ending: str
) -> None:
    settings = limited_settings(write_repository(tmp_path), {"name": "one", "concurrency": 1})
    async with serving(settings, fakes) as (client, asgi):
        echo = fakes.backends["echo"]
        if ending == "answer":
            assert await statuses(client, 1) == [200]
        elif ending == "error":
            echo.fail_when = [13.0]
            assert (await client.post(URL, json=body(13))).status_code == 500
        elif ending == "invalid":
            assert (await client.post(URL, json={"inputs": []})).status_code == 400
        else:
            echo.hold = True
            leaving = await _one_that_leaves(
                asgi, settings, echo.started, cancel=ending == "cancel"
            )
            echo.release.set()
            assert leaving == []  # nothing was sent to a client that left
            echo.hold = False
        assert await statuses(client, 1) == [200]


async def _one_that_leaves(
    asgi: Any, settings: Settings, started: asyncio.Event, *, cancel: bool
) -> list[Mapping[str, Any]]:
    """A request that is queued and then either disconnects or is cancelled (as the
    server cancels requests at the end of its shutdown grace period)."""
    payload = httpx.Request("POST", "http://x", json=body()).content
    gone = asyncio.Event()
    sent: list[Mapping[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": payload, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] == 503:
            return  # the cancelled request's shutdown answer: its client is gone anyway
        sent.append(message)

    request = asyncio.ensure_future(asgi(post_scope(URL, bearer(settings)), receive, send))
    await asyncio.wait_for(started.wait(), GUARD_S)
    if cancel:
        request.cancel()
    else:
        gone.set()
    await asyncio.wait_for(asyncio.gather(request, return_exceptions=True), GUARD_S)
    return [m for m in sent if m["type"] != "http.response.body"]


def test_a_malformed_rule_is_an_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENSORGATE_LIMITS__RULES", '[{"name": "Bad Name", "rate_per_s": 1}]')
    with pytest.raises(ValueError, match=re.escape("limits.rules.0.name")):
        Settings()
    monkeypatch.setenv(
        "TENSORGATE_LIMITS__RULES", '[{"name": "r", "key": "tenant", "rate_per_s": 1}]'
    )
    with pytest.raises(ValueError, match="key 'tenant' is none of subject, shared, claim:<name>"):
        Settings()
    monkeypatch.setenv("TENSORGATE_LIMITS__RULES", '[{"name": "r"}]')
    with pytest.raises(ValueError, match="sets neither rate_per_s nor concurrency"):
        Settings()
    monkeypatch.setenv(
        "TENSORGATE_LIMITS__RULES",
        '[{"name": "r", "concurrency": 1}, {"name": "r", "concurrency": 2}]',
    )
    with pytest.raises(ValueError, match="two rules are named 'r'"):
        Settings()
