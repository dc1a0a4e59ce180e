"""``make bench``: tensorgate (batching on/off, one process and the default workers)
against the naive baselines (ONNX Runtime on the event loop, in a worker thread), the
floors of a Python server (a bare ASGI app, a plain Starlette route, a bare grpc.aio
server) and raw ONNX Runtime, on loopback, writing docs/benchmarks.md,
docs/benchmarks.png and docs/benchmarks.json.

tensorgate runs as users run it: JWT auth on (a random HS256 secret per run, a token
minted with ``tensorgate token``, sent by wrk and the paced client) and Prometheus
metrics on. The naive servers take no auth. ``--quick`` makes every measurement short.
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
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from alternating import servers_in_turns
from binary_rows import binary_matrix, build_image
from binary_rows import make_bodies as make_binary_bodies
from binary_rows import run_count as binary_run_count
from ceiling import measure
from fair_share_rows import run_count as two_subject_run_count
from fair_share_rows import two_subject_rows, two_workers
from large_json_rows import large_json_rows
from large_json_rows import run_count as large_run_count
from matrix import CONNECTIONS, MODELS, all_servers, matrix
from matrix import run_count as matrix_run_count
from progress import Progress
from queue_runs import client_capacity, memory, overload
from remote_rows import REMOTE_CONNECTIONS, remote_rows
from report import write_report
from results import (
    ACCESS_LOG_OFF,
    ACCESS_LOG_ON,
    CEILING,
    DEFAULT,
    GRPC_FLOOR,
    ON,
    TWO_WORKERS,
    Measurement,
    Report,
)
from servers import Server
from targets import MEMORY_RUN_S, QUICK_MEMORY_S
from tokens import mint
from wide_model import build_wide

ROOT = Path(__file__).resolve().parent.parent
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
    os.environ["BENCH_BEARER_TOKEN"] = mint(env, "bench", "models:infer")
    return env


def load_average() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


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
                    CEILING,
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


def ensure_h2load() -> None:
    """The same for h2load, which drives the gRPC rows."""
    if shutil.which("h2load") is None:
        sys.exit("h2load is not installed: run `make bench` (it installs Debian's nghttp2-client)")


def main() -> None:
    """Run every measurement and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for iterating")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    ensure_wrk()
    ensure_h2load()
    seconds = 2
    rounds = 1 if args.quick else 3
    binary_rounds = 1 if args.quick else 5  # binary vs JSON on mlp is a few percent apart
    queue_s = 2 if args.quick else 4  # the paced client's capacity run; overload twice that
    connections = (1, 64) if args.quick else CONNECTIONS
    memory_s = QUICK_MEMORY_S if args.quick else MEMORY_RUN_S
    large_rounds = 2 if args.quick else 5
    # The two-subject rows: about 90 s in all (a fifth of the wrk runs' time, issue 20).
    two_subject_s, two_subject_rounds = (2.0, 1) if args.quick else (5.0, 3)
    load_before = load_average()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tensorgate-bench-") as tmp:
        work = Path(tmp)
        repos = make_repositories(work)
        bodies = make_bodies(work)
        binary_bodies = make_binary_bodies(work)
        log_runs = binary_rounds * (len(ACCESS_LOG_CONNECTIONS) + len(REMOTE_CONNECTIONS)) * 2
        progress = Progress(
            matrix_run_count(connections, rounds)
            + binary_run_count(binary_rounds)
            + log_runs
            + large_run_count(large_rounds)
            + two_subject_run_count(two_subject_rounds)
            + len(MODELS)
            + 2
        )
        env = enable_auth()
        with all_servers(repos, work, env) as servers:
            results = matrix(servers, bodies, work, seconds, connections, rounds, progress)
            grpc_failures: Counter[str] = Counter()
            binary = binary_matrix(
                servers[ON],
                servers[GRPC_FLOOR],
                binary_bodies,
                work,
                seconds,
                binary_rounds,
                progress,
                grpc_failures,
            )
            logged = access_log_rows(servers, bodies, work, seconds, binary_rounds, progress)
            mlp_body = bodies[("mlp", "tensorgate")]
            hop = remote_rows(servers, mlp_body, work, seconds, binary_rounds, progress)
            large = large_json_rows(
                servers[ON],
                mlp_body,
                repos["on"] / "mlp" / "1" / "model.onnx",
                work,
                seconds if args.quick else 2 * seconds,
                large_rounds,
                progress,
            )
            with two_workers(repos["on"], work, env) as both:
                polite = two_subject_rows(
                    {ON: servers[ON], TWO_WORKERS: both},
                    mlp_body,
                    env,
                    two_subject_s,
                    two_subject_rounds,
                    progress,
                )
            default_workers = servers[DEFAULT].worker_processes()
            progress.step("overload, 4x capacity")
            client_rate = client_capacity(servers[ON], mlp_body, queue_s)
            over = overload(servers[ON], mlp_body, client_rate, queue_s * 2, 128)
            over["wrk_capacity_per_s"] = next(
                r.ok_per_s for r in results if (r.server, r.model, r.connections) == (ON, "mlp", 64)
            )
            progress.finish("overload")
            progress.step(f"memory, {memory_s:.0f}s at 70%")
            mem = memory(servers[ON], mlp_body, client_rate, memory_s)
            progress.finish("memory")
        results += ceilings(repos["on"], connections, 1.0 if args.quick else 2.0, progress)
    report = Report(
        measurements=results,
        binary=binary,
        binary_rounds=binary_rounds,
        grpc_failures=dict(grpc_failures),
        access_log=logged,
        remote=hop,
        large_json=large,
        two_subjects=polite,
        overload=over,
        memory=mem,
        default_workers=default_workers,
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
                "grpc_failures": dict(grpc_failures),
                "access_log": [asdict(r) for r in logged],
                "remote": [asdict(r) for r in hop],
                "large_json": asdict(large),
                "two_subjects": [asdict(r) for r in polite],
                "default_workers": default_workers,
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
