"""The main matrix of ``make bench``: every server up at once, and wrk against each server,
model and connection count in alternating rounds.

The servers: tensorgate one process (``ON``), with batching off, and with the default
workers; the naive baseline with ONNX Runtime on the event loop and in a worker thread,
one per model; the two floors (a bare ASGI app and a plain Starlette route answering a
fixed body); the gRPC floor (a bare grpc.aio server, measured in the gRPC rows only); and
the servers of the access log and remote backend rows.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from alternating import alternating
from progress import Progress
from remote_rows import remote_repository, upstream_environment
from results import (
    ACCESS_LOG_OFF,
    ACCESS_LOG_ON,
    ASGI_FLOOR,
    DEFAULT,
    GRPC_FLOOR,
    NAIVE,
    NAIVE_THREAD,
    OFF,
    ON,
    REMOTE,
    STARLETTE_FLOOR,
    Measurement,
)
from servers import Server, floor, naive, running, tensorgate
from wrk import WrkResult, run_wrk

MODELS = ("mlp", "digits", "wide")
CONNECTIONS = (1, 16, 64, 256)
WORKER_MODELS = ("mlp", "wide")
"""Models also measured on the server with the default workers."""
FLOOR_MODELS = ("mlp", "digits")
"""Bodies the floors are measured with (``wide``'s is the size of ``mlp``'s)."""
READY = "/v2/health/ready"


def kinds_of(model: str) -> list[str]:
    """The servers measured with ``model``, in the order they take turns."""
    kinds = [NAIVE, NAIVE_THREAD]
    if model in FLOOR_MODELS:
        kinds += [ASGI_FLOOR, STARLETTE_FLOOR]
    kinds += [ON, OFF]
    if model in WORKER_MODELS:
        kinds.append(DEFAULT)
    return kinds


def run_count(connections: tuple[int, ...], rounds: int) -> int:
    """How many wrk runs ``matrix`` makes (for the progress bar)."""
    return rounds * len(connections) * sum(len(kinds_of(model)) for model in MODELS)


@contextlib.contextmanager
def all_servers(
    repos: dict[str, Path], work: Path, env: dict[str, str]
) -> Iterator[dict[str, Server]]:
    """Every server of ``make bench``, up at once so that runs can alternate between them.
    The naive servers are keyed ``"<kind> <model>"``."""
    on, off = repos["on"], repos["off"]
    with contextlib.ExitStack() as stack:

        def start(key: str, command: list[str], ready: str | None, extra: dict[str, str]) -> None:
            log = work / f"{re.sub(r'[^a-z0-9]+', '-', key)}.log"
            servers[key] = stack.enter_context(running(command, ready, log, extra))

        servers: dict[str, Server] = {}
        start(ON, tensorgate(on, 1), READY, env)
        start(OFF, tensorgate(off, 1), READY, env)
        start(DEFAULT, tensorgate(on, None), READY, env)
        start(ACCESS_LOG_ON, tensorgate(on, 1), READY, env)
        start(ACCESS_LOG_OFF, tensorgate(on, 1), READY, {**env, "TENSORGATE_ACCESS_LOG": "false"})
        remote = remote_repository(work, servers[ON].base)
        start(REMOTE, tensorgate(remote, 1), READY, upstream_environment(env))
        start(ASGI_FLOOR, floor("floor_asgi.py"), "/ready", {})
        start(STARLETTE_FLOOR, floor("floor_starlette.py"), "/ready", {})
        start(GRPC_FLOOR, floor("floor_grpc.py"), None, {})
        for model in MODELS:
            path = on / model / "1" / "model.onnx"
            start(f"{NAIVE} {model}", naive(path), "/openapi.json", {})
            start(f"{NAIVE_THREAD} {model}", naive(path, thread=True), "/openapi.json", {})
        yield servers


def matrix(
    servers: dict[str, Server],
    bodies: dict[tuple[str, str], Path],
    work: Path,
    seconds: int,
    connections: tuple[int, ...],
    rounds: int,
    progress: Progress,
) -> list[Measurement]:
    """wrk against every server, model and connection count: ``rounds`` rounds in which
    the servers alternate, each server's figures the median of its rounds. The host's
    noise moves in waves of seconds; one long run per server compares two moments."""
    results: list[Measurement] = []
    for model in MODELS:
        for conns in connections:
            variants = {
                kind: _wrk_run(servers, bodies, work, kind, model, conns, seconds)
                for kind in kinds_of(model)
            }
            results += alternating(variants, model, conns, rounds, progress)
    return results


def _wrk_run(
    servers: dict[str, Server],
    bodies: dict[tuple[str, str], Path],
    work: Path,
    kind: str,
    model: str,
    conns: int,
    seconds: int,
) -> Callable[[], WrkResult]:
    """One wrk run of ``kind``: the naive servers get their own body at ``/predict``;
    tensorgate and the floors the protocol body and the token, at the inference path."""
    if kind in (NAIVE, NAIVE_THREAD):
        url = f"{servers[f'{kind} {model}'].base}/predict"
        body, token = bodies[(model, "naive")], False
    else:
        url = f"{servers[kind].base}/v2/models/{model}/infer"
        body, token = bodies[(model, "tensorgate")], True
    return lambda: run_wrk(url, body, conns, seconds, work, send_token=token)
