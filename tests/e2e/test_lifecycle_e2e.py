"""The model lifecycle against a real ``tensorgate serve`` under load from 16 clients: a new
version, a traffic split shifted 50/50 then 0/100, the old version unloaded, the new one
reloaded from changed files, a corrupt one loaded: no request fails, each answer comes from
a version that was ready then, the corrupt one never answers, warm-up precedes traffic."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import onnx
import pytest

from support.app import bearer, make_settings
from support.load import Load
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess, serving

pytestmark = pytest.mark.e2e

CLIENTS = 16
GUARD_S = 60
DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
BODY = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}]}
WARMUP = "warmup: {runs: 2, batch_sizes: [1, 8]}\n"


def write_config(model: Path, policy: str, split: str) -> None:
    (model / "config.yaml").write_text(
        f"{WARMUP}version_policy: {policy}\n"
        "version_labels: {stable: 1, canary: 2}\n"
        f"traffic:\n  split: {split}\n"
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    (tmp_path / "m" / "1").mkdir(parents=True)
    shutil.copy(DIGITS, tmp_path / "m" / "1" / "model.onnx")
    (tmp_path / "m" / "config.yaml").write_text(WARMUP)
    return tmp_path


@pytest.fixture
def server(repository: Path) -> Iterator[ServerProcess]:
    with serving(repository) as process:
        yield process


async def test_versions_change_under_load_and_no_request_fails(
    server: ServerProcess, repository: Path
) -> None:
    token = bearer(make_settings(repository))
    model = repository / "m"
    marks: dict[str, float] = {}
    load = Load(
        f"{server.base_url}/v2/models/m/infer", {"Authorization": token}, BODY, clients=CLIENTS
    )
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": token}, timeout=GUARD_S
    ) as admin:

        async def load_model(expect: int = 200) -> None:
            answer = await admin.post("/v2/repository/models/m/load")
            assert answer.status_code == expect, answer.text

        load.start()
        await load.more(200)
        # Version 2 beside version 1, taking no traffic yet.
        (model / "2").mkdir()
        shutil.copy(DIGITS, model / "2" / "model.onnx")
        write_config(model, "all", "{stable: 100, canary: 0}")
        marks["v2 loading"] = time.monotonic()
        await load_model()
        await load.more(200)
        write_config(model, "all", "{stable: 50, canary: 50}")
        await load_model()
        marks["50/50"] = time.monotonic()
        await load.more(400)
        write_config(model, "all", "{stable: 0, canary: 100}")
        await load_model()
        marks["0/100"] = time.monotonic()
        await load.more(300)
        # Version 1 unloaded: the policy no longer selects it; its queue drains first.
        write_config(model, "{specific: [2]}", "{canary: 1}")
        await load_model()
        marks["v1 gone"] = time.monotonic()
        await load.more(200)
        # Version 2 reloaded from changed files (same signature, different bytes).
        changed = onnx.load(str(DIGITS))
        changed.doc_string = "retrained"
        onnx.save(changed, str(model / "2" / "model.onnx"))
        await load_model()
        await load.more(200)
        # A corrupt version 3 fails to load and never serves; version 2 goes on.
        (model / "3").mkdir()
        (model / "3" / "model.onnx").write_bytes(b"\x08corrupt")
        write_config(model, "{specific: [2, 3]}", "{canary: 1}")
        await load_model(expect=400)
        await load.more(300)
        index = (await admin.post("/v2/repository/index")).json()
        await load.stop()

    answers = [
        SimpleNamespace(
            sent=a.sent,
            received=a.received,
            status=a.status,
            version=a.document.get("model_version", "") if a.status == 200 else "",
        )
        for a in load.answers
    ]
    failed = [a for a in answers if a.status != 200]
    assert failed == [], f"{len(failed)} of {len(answers)} failed, first: {failed[:3]}"
    assert {a.version for a in answers} == {"1", "2"}
    assert not [a for a in answers if a.version == "2" and a.received < marks["v2 loading"]]
    assert not [a for a in answers if a.version == "1" and a.sent > marks["v1 gone"]]
    halves = [a.version for a in answers if marks["50/50"] < a.sent < marks["0/100"]]
    assert 0.3 < halves.count("2") / len(halves) < 0.7
    after = [a.version for a in answers if marks["0/100"] < a.sent]
    assert set(after) == {"2"}
    states = {(e["version"], e["state"]) for e in index}
    assert ("2", "READY") in states
    assert ("3", "UNAVAILABLE") in states
    # Warm-up ran before version 2 took its first request (the log says so, in order).
    server.wait_for(re.compile(r"model 'm' version 2 warmed up: 4 call\(s\)"))
    server.wait_for(re.compile(r"model m version 2 is ready"))
