"""``make gpu-check``'s benchmark, on a machine with an NVIDIA GPU: the demo ``mlp`` on the
CUDA execution provider, served by tensorgate (auth, metrics and the access log on) at 1,
64 and 256 connections, against ONNX Runtime on CUDA in-process at the same batch sizes
(the GPU's ceiling). Writes docs/benchmarks-gpu.md."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort

from ceiling import measure
from run import enable_auth, make_bodies
from servers import running, tensorgate
from wrk import run_wrk

ROOT = Path(__file__).resolve().parent.parent
CUDA = "CUDAExecutionProvider"
CONNECTIONS = (1, 64, 256)


def _gpu_name() -> str:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown GPU"
    return done.stdout.strip().splitlines()[0]


def main() -> None:
    """Measure and write the page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if CUDA not in ort.get_available_providers():
        sys.exit("gpu benchmark: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    lines = [
        "# GPU benchmark",
        "",
        f"Written by `make gpu-check` (bench/gpu.py) on {_gpu_name()}, {os.cpu_count()} CPU "
        f"cores. `mlp` with `execution_providers: [cuda]`, {args.seconds} s per run; "
        "tensorgate with its default settings (auth, metrics, access log on), batching on.",
        "",
        "| connections / batch | tensorgate req/s | p50 ms | p99 ms | ORT on CUDA rows/s | "
        "call p50 ms | call p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="tensorgate-gpu-") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        shutil.copytree(ROOT / "models" / "mlp", repo / "mlp")
        (repo / "mlp" / "config.yaml").write_text(
            "execution_providers: [cuda]\nwhen_provider_unavailable: fail\n"
            "warmup: {runs: 3, batch_sizes: [1, 64, 256]}\n"
            "batching: {max_batch_size: 256, max_queue_size: 1024}\n"
        )
        body = make_bodies(work)[("mlp", "tensorgate")]
        server_cmd = tensorgate(repo, 1)
        with running(server_cmd, "/v2/health/ready", work / "gpu.log", enable_auth()) as server:
            for conns in CONNECTIONS:
                served = run_wrk(
                    f"{server.base}/v2/models/mlp/infer",
                    body,
                    conns,
                    args.seconds,
                    work,
                    send_token=True,
                )
                ceiling = measure(repo / "mlp" / "1" / "model.onnx", conns, args.seconds, CUDA)
                lines.append(
                    f"| {conns} | {served.requests_per_s:,.0f} | {served.p50_ms:.2f} | "
                    f"{served.p99_ms:.2f} | {ceiling.rows_per_s:,.0f} | {ceiling.p50_ms:.2f} | "
                    f"{ceiling.p99_ms:.2f} |"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks-gpu.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
