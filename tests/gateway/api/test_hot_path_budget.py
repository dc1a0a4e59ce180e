"""The hot path's budget: Python calls made to answer one inference request, per route
family, against the committed figures in hot_path_budget.json (issue 18, item 5).

Calls are counted, not timed, so the check is exact on a noisy machine: every Python
function entered and every builtin called on the event loop's thread between the request
arriving and its answer being sent, the end-of-turn callbacks it scheduled included (the
runtime's worker threads are not counted). A change that adds more than 5% fails here;
raising a budget is an edit of hot_path_budget.json with the reason, for review.
``make bench-ab`` stays the way to show what a change costs in time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import orjson
import pytest
import uvloop
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.api.pipeline.endpoint import SERVER_REQUESTS
from gateway.settings import FairShareSettings
from support.app import bearer, make_settings, post_scope
from support.paths import DEMO_MODELS

BUDGET_FILE = Path(__file__).with_name("hot_path_budget.json")
TOLERANCE = 1.05
WARM_UP = 60  # caches filled, every batch size measured
COUNTED = 20  # requests counted; the figure is their mean

_PIXELS = np.linspace(0, 16, 64, dtype=np.float32)


def _protocol_json() -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    document = {
        "inputs": [
            {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": _PIXELS.tolist()}
        ]
    }
    return "/v2/models/digits/infer", [], orjson.dumps(document)


def _protocol_binary() -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    data = _PIXELS.tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [1, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(data)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    length = (b"inference-header-content-length", str(len(header)).encode())
    return "/v2/models/digits/infer", [length], header + data


def _typed_json() -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    return "/models/digits/predict", [], orjson.dumps({"inputs": {"pixels": [_PIXELS.tolist()]}})


ROUTE_FAMILIES: dict[str, Callable[[], tuple[str, list[tuple[bytes, bytes]], bytes]]] = {
    "protocol_json": _protocol_json,
    "protocol_binary": _protocol_binary,
    "typed_json": _typed_json,
}


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """The demo ``digits``, its calls always on the event loop: a loaded machine could
    time one above the default 0.5 ms and send it to the thread, another count."""
    shutil.copytree(DEMO_MODELS / "digits", tmp_path / "digits")
    config = tmp_path / "digits" / "config.yaml"
    config.write_text(config.read_text() + "batching:\n  inline_max_ms: 100\n")
    return tmp_path


class CallCounter:
    """Counts Python calls and builtin calls on the thread that installs it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        del frame, arg
        if event in ("call", "c_call"):
            self.calls += 1


async def calls_per_request(repository: Path, family: str, **overrides: Any) -> float:
    """The mean count of ``COUNTED`` requests of ``family``, one after another; settings
    at their defaults unless ``overrides`` says otherwise."""
    settings = make_settings(repository, **overrides)
    path, extra_headers, body = ROUTE_FAMILIES[family]()
    scope = post_scope(path, bearer(settings))
    scope["headers"] += [*extra_headers, (b"content-length", str(len(body)).encode())]
    # As `tensorgate serve` hands it over: the requests the process is answering, this one
    # alone (serving.connection_limits), so its batch runs at once.
    scope[SERVER_REQUESTS] = {"this request"}
    async with LifespanManager(create_app(settings)) as manager:
        app = manager.app
        statuses: list[int] = []

        async def one() -> None:
            answered = asyncio.get_running_loop().create_future()
            messages = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive() -> dict[str, Any]:
                if messages:
                    return messages.pop()
                await answered  # the client stays until its answer is sent
                return {"type": "http.disconnect"}

            async def send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                elif not message.get("more_body"):
                    answered.set_result(None)

            await app(dict(scope), receive, send)

        for _ in range(WARM_UP):
            await one()
        counter = CallCounter()
        settled = asyncio.get_running_loop().create_future()
        sys.setprofile(counter)
        try:
            for _ in range(COUNTED):
                await one()
            # The callbacks the last request scheduled for the end of its loop turn.
            asyncio.get_running_loop().call_soon(settled.set_result, None)
            await settled
        finally:
            sys.setprofile(None)
    assert statuses == [200] * (WARM_UP + COUNTED)
    return counter.calls / COUNTED


@pytest.mark.parametrize("family", sorted(ROUTE_FAMILIES))
def test_one_request_stays_within_its_call_budget(repository: Path, family: str) -> None:
    budgets = json.loads(BUDGET_FILE.read_text())
    budget = budgets[family]["calls"]
    # On uvloop, as `tensorgate serve` runs: its loop machinery is not Python, so what is
    # counted is the gateway's own calls (and its libraries').
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        measured = runner.run(calls_per_request(repository, family))
    assert measured <= budget * TOLERANCE, (
        f"one {family} request now makes {measured:.0f} Python calls; its budget is {budget} "
        f"(+{TOLERANCE - 1:.0%}). Move the new work out of the per-request path (once per "
        "version, per batch, per loop turn), or raise the budget in "
        f"{BUDGET_FILE.name} with the reason."
    )


def test_fair_share_costs_a_lone_caller_at_most_two_percent_of_the_calls(
    repository: Path,
) -> None:
    # Issue 20: fair admission may cost one caller at most 3% of its req/s. Timed by make
    # bench-ab that is within the noise (6.8% in one run, 2.3% in the next, spreads
    # overlapping); counted here it is exact. The serving layer's share of it (fair reads,
    # a few calls per answer) is held by test_fair_reads.py.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        on = runner.run(calls_per_request(repository, "protocol_json"))
        off = runner.run(
            calls_per_request(
                repository, "protocol_json", fair_share=FairShareSettings(enabled=False)
            )
        )
    assert on <= off * 1.02, f"fair share on: {on:.0f} calls per request, off: {off:.0f}"


def test_every_route_family_has_a_reasoned_budget() -> None:
    budgets = json.loads(BUDGET_FILE.read_text())
    assert set(budgets) == set(ROUTE_FAMILIES)
    for family, entry in budgets.items():
        assert isinstance(entry["calls"], int), family
        assert entry["calls"] > 0, family
        assert entry["why"].strip(), family
