"""``make bench``: tensorgate (batching on/off, 1 and 2 workers) against the naive baseline
and raw ONNX Runtime, on loopback, writing docs/benchmarks.md and docs/benchmarks.png.

tensorgate runs as users run it: JWT auth on (a random HS256 secret per run, a token
minted with ``tensorgate token``, sent by wrk and the paced client) and Prometheus
metrics on. The naive server takes no auth. ``--quick`` makes every measurement short.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from alternating import servers_in_turns
from binary_rows import binary_matrix, build_image, run_count
from binary_rows import make_bodies as make_binary_bodies
from ceiling import measure
from progress import Progress
from queue_runs import client_capacity, memory, overload
from remote_rows import REMOTE_CONNECTIONS, remote_repository, remote_rows, upstream_environment
from report import (
    ACCESS_LOG_OFF,
    ACCESS_LOG_ON,
    REMOTE,
    Measurement,
    Report,
    median_of,
    write_report,
)
from servers import Server, naive, running, tensorgate
from wide_model import build_wide
from wrk import WrkResult, run_wrk

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mlp", "digits", "wide")
CONNECTIONS = (1, 16, 64, 256)
WORKER_MODELS = ("mlp", "wide")
ACCESS_LOG_CONNECTIONS = (1, 64)


def make_repositories(work: Path) -> dict[str, Path]:
    """Temporary repositories: demo models as shipped plus ``wide``; batching on and off.
    The batching-on one also serves ``image`` for the binary tensor data rows."""
    repos: dict[str, Path] = {}
    for variant in ("on", "off"):
        repo = work / f"repo-{variant}"
        for name in ("mlp", "digits"):
            shutil.copytree(ROOT / "models" / name, repo / name)
        build_wide(repo / "wide" / "1" / "model.onnx")
        # As the demo models: one ONNX Runtime thread per call (docs/batching.md).
        (repo / "wide" / "config.yaml").write_text(
            "execution_providers: [cpu]\nintra_op_threads: 1\n"
        )
        if variant == "off":
            for name in MODELS:
                config_path = repo / name / "config.yaml"
                config = yaml.safe_load(config_path.read_text()) or {}
                config["batching"] = {"enabled": False}
                config_path.write_text(yaml.safe_dump(config))
        repos[variant] = repo
    build_image(repos["on"] / "image")
    return repos


def make_bodies(work: Path) -> dict[tuple[str, str], Path]:
    """One request body per (model, server kind): Open Inference Protocol or naive JSON."""
    rng = np.random.default_rng(1)
    shapes = {"mlp": ("input", 256), "digits": ("pixels", 64), "wide": ("input", 256)}
    bodies: dict[tuple[str, str], Path] = {}
    for model, (name, width) in shapes.items():
        row = [round(float(v), 6) for v in rng.uniform(0, 1, width)]
        oip = {"inputs": [{"name": name, "shape": [1, width], "datatype": "FP32", "data": row}]}
        for kind, document in (("tensorgate", oip), ("naive", {"x": [row]})):
            path = work / f"{model}-{kind}.json"
            path.write_text(json.dumps(document))
            bodies[(model, kind)] = path
    return bodies


def enable_auth() -> dict[str, str]:
    """A fresh signing secret for the servers; the token goes to BENCH_BEARER_TOKEN."""
    env = {"TENSORGATE_AUTH__SECRET": secrets.token_urlsafe(48)}
    exe = Path(sys.executable).with_name("tensorgate")
    minted = subprocess.run(
        [str(exe), "token", "--sub", "bench", "--scope", "models:infer", "--ttl", "2h"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    os.environ["BENCH_BEARER_TOKEN"] = minted.stdout.strip()
    return env


def load_average() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


@contextlib.contextmanager
def all_servers(
    repos: dict[str, Path], work: Path, env: dict[str, str]
) -> Iterator[dict[str, Server]]:
    """Every server of the main matrix, up at once so that runs can alternate between them."""
    with contextlib.ExitStack() as stack:
        servers = {
            "tensorgate": stack.enter_context(
                running(tensorgate(repos["on"], 1), "/v2/health/ready", work / "on.log", env)
            ),
            "tensorgate, batching off": stack.enter_context(
                running(tensorgate(repos["off"], 1), "/v2/health/ready", work / "off.log", env)
            ),
            "tensorgate, 2 workers": stack.enter_context(
                running(tensorgate(repos["on"], 2), "/v2/health/ready", work / "on2.log", env)
            ),
            ACCESS_LOG_ON: stack.enter_context(
                running(tensorgate(repos["on"], 1), "/v2/health/ready", work / "logged.log", env)
            ),
            ACCESS_LOG_OFF: stack.enter_context(
                running(
                    tensorgate(repos["on"], 1),
                    "/v2/health/ready",
                    work / "quiet.log",
                    {**env, "TENSORGATE_ACCESS_LOG": "false"},
                )
            ),
        }
        upstream = servers["tensorgate"].base
        servers[REMOTE] = stack.enter_context(
            running(
                tensorgate(remote_repository(work, upstream), 1),
                "/v2/health/ready",
                work / "remote.log",
                upstream_environment(env),
            )
        )
        for model in MODELS:
            servers[f"naive {model}"] = stack.enter_context(
                running(
                    naive(repos["on"] / model / "1" / "model.onnx"),
                    "/openapi.json",
                    work / f"naive-{model}.log",
                )
            )
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
            kinds = ["naive", "tensorgate", "tensorgate, batching off"]
            if model in WORKER_MODELS:
                kinds.append("tensorgate, 2 workers")
            runs: dict[str, list[WrkResult]] = {kind: [] for kind in kinds}
            for _ in range(rounds):
                for kind in kinds:
                    label = f"{kind} {model} c={conns}"
                    progress.step(label)
                    runs[kind].append(_wrk_once(servers, bodies, work, kind, model, conns, seconds))
                    progress.finish(label)
            results += [median_of(kind, model, conns, runs[kind]) for kind in kinds]
    return results


def _wrk_once(
    servers: dict[str, Server],
    bodies: dict[tuple[str, str], Path],
    work: Path,
    kind: str,
    model: str,
    conns: int,
    seconds: int,
) -> WrkResult:
    if kind == "naive":
        server, url_path, body, token = (
            servers[f"naive {model}"],
            "/predict",
            bodies[(model, "naive")],
            False,
        )
    else:
        server, url_path, body, token = (
            servers[kind],
            f"/v2/models/{model}/infer",
            bodies[(model, "tensorgate")],
            True,
        )
    return run_wrk(server.base + url_path, body, conns, seconds, work, send_token=token)


def access_log_rows(
    servers: dict[str, Server],
    bodies: dict[tuple[str, str], Path],
    work: Path,
    seconds: int,
    rounds: int,
    progress: Progress,
) -> list[Measurement]:
    """``mlp`` at 1 and 64 connections with the access log on (the default) and off, on
    two fresh one-worker servers that serve nothing else, taking turns in every round."""
    kinds = (ACCESS_LOG_ON, ACCESS_LOG_OFF)
    body = bodies[("mlp", "tensorgate")]
    return servers_in_turns(
        servers, kinds, body, "mlp", ACCESS_LOG_CONNECTIONS, work, seconds, rounds, progress
    )


def ceilings(
    repo: Path, connections: tuple[int, ...], seconds: float, progress: Progress
) -> list[Measurement]:
    """Raw ONNX Runtime in this process, batch size = connection count."""
    results = []
    for model in MODELS:
        label = f"raw onnxruntime {model}"
        progress.step(label)
        for conns in connections:
            ceiling = measure(repo / model / "1" / "model.onnx", conns, seconds)
            results.append(
                Measurement(
                    "onnxruntime in-process (ceiling)",
                    model,
                    conns,
                    ceiling.rows_per_s,
                    ceiling.p50_ms,
                    ceiling.p99_ms,
                    0,
                    0,
                )
            )
        progress.finish(label)
    return results


def ensure_wrk() -> None:
    """Fail early with a clear message when wrk is missing (make bench installs it)."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run `make bench` (it installs Debian's wrk)")


def main() -> None:
    """Run every measurement and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for iterating")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    ensure_wrk()
    seconds = 2
    rounds = 1 if args.quick else 3
    binary_rounds = 1 if args.quick else 5  # binary vs JSON on mlp is a few percent apart
    queue_s = 2 if args.quick else 4  # the paced client's capacity run; overload twice that
    connections = (1, 64) if args.quick else CONNECTIONS
    memory_s = 15.0 if args.quick else 120.0
    load_before = load_average()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tensorgate-bench-") as tmp:
        work = Path(tmp)
        repos = make_repositories(work)
        bodies = make_bodies(work)
        runs = rounds * sum(len(connections) * (4 if m in WORKER_MODELS else 3) for m in MODELS)
        binary_bodies = make_binary_bodies(work)
        log_runs = binary_rounds * (len(ACCESS_LOG_CONNECTIONS) + len(REMOTE_CONNECTIONS)) * 2
        progress = Progress(runs + run_count(binary_rounds) + log_runs + len(MODELS) + 2)
        with all_servers(repos, work, enable_auth()) as servers:
            results = matrix(servers, bodies, work, seconds, connections, rounds, progress)
            binary = binary_matrix(
                servers["tensorgate"], binary_bodies, work, seconds, binary_rounds, progress
            )
            logged = access_log_rows(servers, bodies, work, seconds, binary_rounds, progress)
            mlp_body = bodies[("mlp", "tensorgate")]
            hop = remote_rows(servers, mlp_body, work, seconds, binary_rounds, progress)
            by = {(r.server, r.model, r.connections): r for r in results}
            capacity = max(
                by[(k, "mlp", 64)].ok_per_s for k in ("tensorgate", "tensorgate, 2 workers")
            )
            best_kind = max(
                ("tensorgate", "tensorgate, 2 workers"),
                key=lambda k: by[(k, "mlp", 64)].ok_per_s,
            )
            one_worker_capacity = by[("tensorgate", "mlp", 64)].ok_per_s
            progress.step("overload, 4x capacity")
            mlp_body = bodies[("mlp", "tensorgate")]
            client_rate = client_capacity(servers["tensorgate"], mlp_body, queue_s)
            over = overload(servers["tensorgate"], mlp_body, client_rate, queue_s * 2, 128)
            over["wrk_capacity_per_s"] = one_worker_capacity
            progress.finish("overload")
            progress.step(f"memory, {memory_s:.0f}s at 70%")
            mem = memory(servers["tensorgate"], mlp_body, client_rate, memory_s)
            progress.finish("memory")
        results += ceilings(repos["on"], connections, 1.0 if args.quick else 2.0, progress)
    report = Report(
        measurements=results,
        binary=binary,
        binary_rounds=binary_rounds,
        access_log=logged,
        remote=hop,
        overload=over,
        memory=mem,
        best_kind=best_kind,
        capacity=capacity,
        load_before=load_before,
        load_after=load_average(),
        seconds_per_run=seconds,
        rounds=rounds,
        total_s=time.monotonic() - started,
        quick=args.quick,
        auth=bool(os.environ.get("BENCH_BEARER_TOKEN")),
        cpu=_cpu_name(),
    )
    write_report(report, args.out)
    (args.out / "benchmarks.json").write_text(
        json.dumps(
            {
                "measurements": [asdict(r) for r in results],
                "binary": [asdict(r) for r in binary],
                "access_log": [asdict(r) for r in logged],
                "remote": [asdict(r) for r in hop],
                "overload": over,
                "memory": mem,
            },
            indent=1,
        )
    )


def _cpu_name() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
