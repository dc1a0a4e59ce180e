"""The two-subject rows of ``make bench`` (issue 20, fair share): a polite caller at 4
closed-loop connections on ``mlp``, alone and beside another caller flooding at 256
connections without honouring Retry-After (a process of its own), against the
one-process tensorgate and one with ``--workers 2``, default settings. In each round the
polite caller runs alone, then beside the flood; figures are medians over the rounds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from flood_process import FLOWING
from paced_client import UNANSWERED, PacedResult, closed_run
from progress import Progress
from results import ON, TWO_WORKERS, TwoSubjects
from servers import HOST, Server, running, tensorgate
from tokens import mint

POLITE_CONNECTIONS = 4
FLOOD_CONNECTIONS = 256
FLOOD_MARGIN_S = 3.0
"""The flood runs this much longer than the polite run beside it (its start-up)."""
PATH = "/v2/models/mlp/infer"
SERVERS = (ON, TWO_WORKERS)


@contextlib.contextmanager
def two_workers(repository: Path, work: Path, env: dict[str, str]) -> Iterator[Server]:
    """A tensorgate with ``--workers 2`` for these rows alone, default settings."""
    log = work / "two-workers.log"
    with running(tensorgate(repository, 2), "/v2/health/ready", log, env) as server:
        yield server


def _flood(server: Server, body: Path, token: str, seconds: float) -> subprocess.Popen[str]:
    """Start the flood; return once it is flowing."""
    script = Path(__file__).with_name("flood_process.py")
    arguments = [str(server.port), PATH, str(body), token, str(FLOOD_CONNECTIONS)]
    process = subprocess.Popen(
        [sys.executable, str(script), *arguments, str(seconds + FLOOD_MARGIN_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != FLOWING:
        process.kill()
        process.wait()
        raise RuntimeError("the flood process did not start flowing")
    return process


def _polite(server: Server, payload: bytes, token: str, seconds: float) -> PacedResult:
    return asyncio.run(
        closed_run(HOST, server.port, PATH, payload, POLITE_CONNECTIONS, seconds, token=token)
    )


def _row(
    label: str,
    alone: list[PacedResult],
    beside: list[PacedResult],
    flood: list[Counter[int]],
    flood_s: float,
) -> TwoSubjects:
    """Medians of goodput and p99 over the rounds; shares of 200 over all of them; the
    flood's 200s per second of its ``flood_s`` in all."""

    def ok_share(runs: list[PacedResult]) -> float:
        answers = sum(sum(r.statuses.values()) for r in runs)
        return sum(r.statuses[200] for r in runs) / answers if answers else 0.0

    flood_total = sum(sum(c.values()) for c in flood)
    return TwoSubjects(
        server=label,
        rounds=len(alone),
        seconds=alone[0].seconds,
        alone_ok_per_s=statistics.median(r.goodput for r in alone),
        alone_p99_ms=statistics.median(r.percentile(99) for r in alone),
        alone_ok_share=ok_share(alone),
        beside_ok_per_s=statistics.median(r.goodput for r in beside),
        beside_p99_ms=statistics.median(r.percentile(99) for r in beside),
        beside_ok_share=ok_share(beside),
        flood_ok_per_s=sum(c[200] for c in flood) / flood_s if flood_s else 0.0,
        flood_503_share=sum(c[503] for c in flood) / flood_total if flood_total else 0.0,
        unanswered=sum(c[UNANSWERED] for c in flood) + sum(r.statuses[UNANSWERED] for r in beside),
    )


def two_subject_rows(
    servers: dict[str, Server],
    body: Path,
    env: dict[str, str],
    seconds: float,
    rounds: int,
    progress: Progress,
) -> list[TwoSubjects]:
    """Both servers of ``SERVERS`` (``servers`` must hold them), ``rounds`` rounds each."""
    polite, flooder = mint(env, "polite", "models:infer"), mint(env, "flood", "models:infer")
    payload = body.read_bytes()
    rows = []
    for label in SERVERS:
        server = servers[label]
        alone: list[PacedResult] = []
        beside: list[PacedResult] = []
        flood: list[Counter[int]] = []
        for n in range(rounds):
            step = f"two subjects, {label}, round {n + 1}"
            progress.step(f"{step}: alone")
            alone.append(_polite(server, payload, polite, seconds))
            progress.finish(f"{step}: alone")
            progress.step(f"{step}: beside the flood")
            process = _flood(server, body, flooder, seconds)
            try:
                beside.append(_polite(server, payload, polite, seconds))
                out, _ = process.communicate(timeout=seconds + 60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            flood.append(Counter({int(k): v for k, v in json.loads(out).items()}))
            lost = flood[-1][UNANSWERED] + beside[-1].statuses[UNANSWERED]
            if lost:
                print(f"{step}: {lost} request(s) unanswered after 30 s", file=sys.stderr)
            progress.finish(f"{step}: beside the flood")
        rows.append(_row(label, alone, beside, flood, rounds * (seconds + FLOOD_MARGIN_S)))
    return rows


def run_count(rounds: int) -> int:
    """Progress steps of ``two_subject_rows``."""
    return rounds * len(SERVERS) * 2
