"""Version labels, traffic splits, metadata of versions and readiness, over ASGI."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.api.state import AppState
from support.app import bearer, make_settings, open_client
from support.fake_backend import FakeLoader

SPLIT = """\
version_labels: {stable: 1, canary: 2}
traffic:
  split: {stable: 95, canary: 5}
"""


def write_model(root: Path, name: str, *versions: int, config: str = "") -> None:
    """``root/name/<v>/model.onnx`` (never read by the fake loader) and its config."""
    for version in versions:
        (root / name / str(version)).mkdir(parents=True, exist_ok=True)
        (root / name / str(version) / "model.onnx").write_bytes(b"fake")
    (root / name / "config.yaml").write_text(config)


def infer_body(tag: float = 1.0) -> dict[str, Any]:
    """One echo request."""
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [tag] * 4}]}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    write_model(tmp_path, "m", 1, 2, config=SPLIT)
    async with open_client(make_settings(tmp_path), loader=FakeLoader()) as http:
        yield http


async def versions_answering(
    client: httpx.AsyncClient, count: int, headers: dict[str, str] | None = None
) -> Counter[str]:
    """The ``model_version`` of ``count`` unversioned requests, sent 50 at a time."""
    seen: Counter[str] = Counter()
    for start in range(0, count, 50):
        answers = await asyncio.gather(
            *(
                client.post("/v2/models/m/infer", json=infer_body(n), headers=headers)
                for n in range(start, min(count, start + 50))
            )
        )
        assert {a.status_code for a in answers} == {200}
        seen.update(a.json()["model_version"] for a in answers)
    return seen


async def test_labels_are_accepted_wherever_a_version_is(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v2/models/m/versions/canary/infer", json=infer_body())
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "2"
    typed = await client.post(
        "/models/m/versions/stable/predict", json={"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}
    )
    assert typed.status_code == 200
    assert typed.json()["model_version"] == "1"
    assert (await client.get("/v2/models/m/versions/canary")).json()["versions"] == ["2"]
    assert (await client.get("/v2/models/m/versions/canary/ready")).json()["version"] == "2"
    assert (await client.get("/v2/models/m/versions/stable/config")).status_code == 200
    unknown = await client.post("/v2/models/m/versions/beta/infer", json=infer_body())
    assert unknown.status_code == 404  # the form of a label: it may yet be defined
    assert unknown.json()["error"].startswith(
        "failed to get model version from specified version string 'beta'"
    )
    assert "or a label (canary=2, stable=1)" in unknown.json()["error"]
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/models/m/versions/canary/predict" in paths
    assert "/models/m/versions/stable/predict" in paths


async def test_the_split_shares_2000_requests_within_3_points(client: httpx.AsyncClient) -> None:
    seen = await versions_answering(client, 2000)
    assert set(seen) == {"1", "2"}
    assert abs(seen["2"] / 2000 - 0.05) <= 0.03
    metrics = (await client.get("/metrics")).text
    counted = (
        f'tensorgate_inference_requests_total{{model="m",protocol="http",'
        f'status="200",version="2"}} {seen["2"]}.0'
    )
    assert counted in metrics


async def test_metadata_lists_versions_states_labels_and_the_split(
    client: httpx.AsyncClient,
) -> None:
    metadata = (await client.get("/v2/models/m")).json()
    assert metadata["versions"] == ["1", "2"]
    assert metadata["version_states"] == [
        {"version": "1", "state": "READY", "reason": "", "labels": ["stable"]},
        {"version": "2", "state": "READY", "reason": "", "labels": ["canary"]},
    ]
    assert metadata["traffic"] == {"stable": 95, "canary": 5}
    index = (await client.post("/v2/repository/index")).json()
    assert [entry["labels"] for entry in index] == [["stable"], ["canary"]]


async def test_a_split_change_through_the_load_route_takes_effect(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "m" / "config.yaml").write_text(SPLIT.replace("95", "0").replace(" 5}", " 1}"))
    assert (await client.post("/v2/repository/models/m/load")).status_code == 200
    assert await versions_answering(client, 200) == Counter({"2": 200})


@asynccontextmanager
async def sticky_client(
    tmp_path: Path, sticky: str
) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    config = SPLIT.replace("95, canary: 5}", f"50, canary: 50}}\n  sticky: {sticky}")
    write_model(tmp_path, "m", 1, 2, config=config)
    states: list[AppState] = []
    app = create_app(make_settings(tmp_path), loader=FakeLoader(), on_ready=states.append)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http, states[0]


async def test_a_sticky_split_keeps_each_subject_on_one_version(tmp_path: Path) -> None:
    async with sticky_client(tmp_path, "subject") as (http, state):
        by_subject: dict[str, set[str]] = {}
        for n in range(40):
            token = {"Authorization": bearer(state.settings, subject=f"caller-{n}")}
            by_subject[f"caller-{n}"] = set(await versions_answering(http, 5, token))
        assert all(len(versions) == 1 for versions in by_subject.values())
        assert {v for versions in by_subject.values() for v in versions} == {"1", "2"}


async def test_a_sticky_split_by_header_keeps_each_caller_on_one_version(tmp_path: Path) -> None:
    async with sticky_client(tmp_path, "{header: X-User-Id}") as (http, state):
        token = bearer(state.settings)
        seen: set[str] = set()
        for n in range(40):
            headers = {"Authorization": token, "x-user-id": f"user-{n}"}
            versions = set(await versions_answering(http, 5, headers))
            assert len(versions) == 1
            seen |= versions
        assert seen == {"1", "2"}


async def test_readiness_answers_503_once_draining(tmp_path: Path) -> None:
    async with sticky_client(tmp_path, "subject") as (http, state):
        assert (await http.get("/v2/health/ready")).status_code == 200
        state.lifecycle.begin_draining()
        answer = await http.get("/v2/health/ready")
        assert answer.status_code == 503
        assert answer.json()["error"] == "server is not ready: it is shutting down"
        assert (await http.get("/v2/health/live")).status_code == 200


async def test_a_split_target_that_failed_to_load_takes_no_traffic(tmp_path: Path) -> None:
    write_model(tmp_path, "m", 1, config=SPLIT)  # version 2 (canary) is missing
    async with open_client(make_settings(tmp_path), loader=FakeLoader()) as http:
        assert await versions_answering(http, 100) == Counter({"1": 100})
        assert (await http.get("/v2/health/ready")).status_code == 200
