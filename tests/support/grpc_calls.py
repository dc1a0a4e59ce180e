"""For end-to-end gRPC tests: the access-log lines of chosen calls, and /metrics samples."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.server_process import ServerProcess

GUARD_S = 60.0  # hang guard only


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


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def samples(http: httpx.AsyncClient) -> Samples:
    """Every sample of the server's ``/metrics`` (``http`` has its base URL and a token)."""
    text = (await http.get("/metrics")).text
    return {
        (found.name, frozenset(found.labels.items())): found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
    }


def sample(values: Samples, name: str, **labels: str) -> float:
    """One sample of ``values`` (0 when absent: a series not yet observed)."""
    return values.get((name, frozenset(labels.items())), 0.0)


async def queue_depth(http: httpx.AsyncClient, model: str) -> float:
    """Requests waiting in the queue of ``model`` version 1."""
    return sample(await samples(http), "tensorgate_queue_depth", model=model, version="1")


async def until_queued(http: httpx.AsyncClient, model: str, depth: int) -> None:
    """Ask /metrics until ``model`` version 1's queue holds ``depth`` requests (guarded)."""
    deadline = time.monotonic() + GUARD_S
    while await queue_depth(http, model) != depth:
        assert time.monotonic() < deadline, f"{model}'s queue never held {depth} requests"
