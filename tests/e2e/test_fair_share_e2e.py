"""Fair share under a flood (issue 20): a caller at a few closed-loop connections keeps
being served while another floods at 256 connections, ignoring Retry-After.

The figures against the issue's targets (at least half the polite caller's goodput alone,
p99 within 3x) are measured by ``make bench``; this test holds what cannot flake on a
shared machine: nearly every polite request answered, and a goodput far above the few
per cent a first-come-first-served server leaves it (docs/operations.md#fair-share).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from gateway.auth.principal import MODELS_INFER
from support.app import TEST_SECRET, bearer, make_settings
from support.closed_loop import UNANSWERED, ClosedLoopResult, closed_loop
from support.paths import DEMO_MODELS, TESTS
from support.workers import free_port, spawn_workers, workers_started

GUARD_S = 120
POLITE_CONNECTIONS = 4
FLOOD_CONNECTIONS = 256
SECONDS = 3.0
BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 256], "datatype": "FP32", "data": [0.5] * 256}]}
).encode()

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]


def token(subject: str) -> str:
    settings = make_settings(DEMO_MODELS)
    return bearer(settings, (MODELS_INFER,), subject).removeprefix("Bearer ")


async def polite_alone_then_beside_a_flood(
    port: int, body_file: Path
) -> tuple[ClosedLoopResult, ClosedLoopResult, dict[str, int]]:
    """The polite caller's run alone, then its run while the flood (a process of its
    own, so that its client work is not the polite client's) is flowing."""
    path = "/v2/models/mlp/infer"
    polite = token("polite")
    await closed_loop(port, path, BODY, polite, POLITE_CONNECTIONS, 0.5)  # warm
    alone = await closed_loop(port, path, BODY, polite, POLITE_CONNECTIONS, SECONDS)
    flood = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "support.closed_loop", str(port), path, str(body_file)],
        *[token("flood"), str(FLOOD_CONNECTIONS), str(SECONDS + 3)],
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert flood.stdout is not None
    try:
        assert await asyncio.wait_for(flood.stdout.readline(), GUARD_S) == b"flowing\n"
        beside = await closed_loop(port, path, BODY, polite, POLITE_CONNECTIONS, SECONDS)
        statuses = json.loads(await asyncio.wait_for(flood.stdout.readline(), GUARD_S))
    finally:
        if flood.returncode is None:
            flood.terminate()
        await asyncio.wait_for(flood.wait(), GUARD_S)
    return alone, beside, statuses


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_polite_caller_is_served_beside_a_flood(workers: str, tmp_path: Path) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(BODY)
    port = free_port()
    server = await spawn_workers(
        port, env={"TENSORGATE_AUTH__SECRET": TEST_SECRET}, workers=workers
    )
    assert server.stderr is not None
    try:
        await asyncio.wait_for(workers_started(server.stderr, int(workers)), GUARD_S)
        drain = asyncio.ensure_future(server.stderr.read())  # keep the pipe from filling
        alone, beside, flood_statuses = await polite_alone_then_beside_a_flood(port, body_file)
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.wait(), GUARD_S)
    await asyncio.wait_for(drain, GUARD_S)
    figures = (
        f"polite alone {alone.goodput:.0f} ok/s, p99 {alone.percentile_ms(99):.1f} ms; "
        f"beside the flood {beside.goodput:.0f} ok/s, p99 {beside.percentile_ms(99):.1f} ms, "
        f"statuses {dict(beside.statuses)}; flood statuses {flood_statuses}"
    )
    sys.stdout.write(figures + "\n")  # in pytest's captured output (-s shows it)
    assert beside.ok_share >= 0.95, figures
    # Every request that arrived is answered, the flood's too: with --workers 2, a
    # worker whose flood connections were all held once kept them unread for over 30 s.
    assert str(UNANSWERED) not in flood_statuses, figures
    assert beside.statuses[UNANSWERED] == 0, figures
    # First come, first served gave it 4% of its goodput alone (issue 20). With two
    # workers the shares are the server's (fed by the workers' views): 32-100%, median
    # 68%, in 11 runs here; per-process shares gave 11-53%, median 31%, in 9. One worker
    # gave 33-47%, and 2-16% in rare rounds on a loaded machine: the bound is first come,
    # first served's figure three times over, so that only a loss of fairness fails it.
    assert beside.goodput >= 0.12 * alone.goodput, figures
    assert int(flood_statuses.get("200", 0)) > 0, figures  # the flood is served too
