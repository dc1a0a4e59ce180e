"""Large JSON bodies: what the sliced decode costs, and what they do to small requests.

(a) In-process: the floor (``orjson.loads`` + ``np.asarray`` of a 1M-element FP32 body)
against the whole sliced decode of the same body, in alternating rounds (the median of
the per-round ratios), and the exact codec for reference.
(b) Against ``tensorgate serve --workers 1``: one-row ``mlp`` requests from 16 wrk
connections alone, then while one client keeps sending the largest JSON request allowed.

``python bench/large_json.py`` prints both; bench/run.py can call ``decode_cost`` and
``interference`` for rows of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson

from backends.base import ModelSignature, TensorSpec
from gateway.dataplane.codecs import PROTOCOL_JSON, DecodingRules, Slicing
from gateway.protocol.request_codec import decode_protocol_request
from gateway.settings import Settings
from run import enable_auth
from servers import running, tensorgate
from wrk import WrkResult, run_wrk

REPOSITORY = Path(__file__).resolve().parent.parent / "models"
ELEMENTS = 1024 * 1024
WIDTH = 256  # the mlp model's input: float32 [batch, 256]


@dataclass(frozen=True)
class DecodeCost:
    """(a): milliseconds per 1M-element FP32 body, medians over the rounds."""

    body_bytes: int
    floor_ms: float
    sliced_ms: float
    exact_ms: float
    ratio: float
    """Median over the rounds of sliced / floor, each round's pair run back to back."""


@dataclass(frozen=True)
class Interference:
    """(b): one-row requests from 16 connections alone and during large requests."""

    slicing: bool
    large_kind: str
    """``json``, or ``binary``: the same rows as binary tensor data (no JSON to decode:
    what is left of the interference is the model's own work on the large requests)."""
    large_body_bytes: int
    alone: WrkResult
    during: WrkResult
    large_requests: int
    """Large requests answered while ``during`` ran."""
    large_p50_ms: float


def protocol_body(array: np.ndarray) -> bytes:
    """An ``mlp`` inference request carrying ``array`` as nested JSON data."""
    document = {
        "inputs": [{"name": "input", "shape": list(array.shape), "datatype": "FP32", "data": array}]
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def random_rows(rows: int, seed: int = 0) -> np.ndarray:
    """``rows`` rows of standard normal FP32 values."""
    return np.random.default_rng(seed).standard_normal((rows, WIDTH)).astype(np.float32)


def largest_body(limit: int) -> bytes:
    """The largest ``mlp`` request of random rows that fits ``limit`` bytes."""
    per_row = len(protocol_body(random_rows(100))) / 100
    rows = int(limit / per_row)
    body = protocol_body(random_rows(rows))
    while len(body) > limit:
        rows -= 10
        body = protocol_body(random_rows(rows))
    return body


def binary_body(rows: int) -> tuple[bytes, int]:
    """An ``mlp`` request of ``rows`` random rows as binary tensor data, and the length
    of its JSON header."""
    array = random_rows(rows)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(array.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": array.nbytes},
                }
            ]
        }
    )
    return header + array.tobytes(), len(header)


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def decode_cost(rounds: int = 9) -> DecodeCost:
    """(a), in this process: floor, sliced and exact decodes of one body, in turns."""
    body = protocol_body(random_rows(ELEMENTS // WIDTH))
    spec = TensorSpec("input", np.dtype(np.float32), (None, WIDTH), ("batch", None))
    signature = ModelSignature((spec,), ())
    rules = DecodingRules(signature)
    slicing = Slicing(Settings().json_slice_bytes, lambda: False)
    loop = asyncio.new_event_loop()

    def floor() -> None:
        np.asarray(orjson.loads(body)["inputs"][0]["data"], dtype=np.float32)

    def sliced() -> None:
        loop.run_until_complete(PROTOCOL_JSON.decode_large(body, {}, rules, slicing))

    def exact() -> None:
        decode_protocol_request(body, {}, signature, allow_non_finite=False)

    floors, slices, exacts, ratios = [], [], [], []
    try:
        for _ in range(rounds):
            floors.append(_timed(floor))
            slices.append(_timed(sliced))
            exacts.append(_timed(exact))
            ratios.append(slices[-1] / floors[-1])
    finally:
        loop.close()
    return DecodeCost(
        len(body),
        statistics.median(floors),
        statistics.median(slices),
        statistics.median(exacts),
        statistics.median(ratios),
    )


class _LargeSender:
    """One client sending ``body`` again and again until stopped, in a thread."""

    def __init__(self, url: str, body: bytes, header_length: int | None) -> None:
        self._url, self._body = url, body
        self._binary = header_length
        self._stop = threading.Event()
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {
            "Authorization": f"Bearer {os.environ['BENCH_BEARER_TOKEN']}",
            "Content-Type": "application/json",
        }
        if self._binary is not None:
            headers["Content-Type"] = "application/octet-stream"
            headers["Inference-Header-Content-Length"] = str(self._binary)
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                answer = client.post(self._url, content=self._body, headers=headers)
                if answer.status_code == 200:
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                else:
                    self.failures += 1

    def __enter__(self) -> _LargeSender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def interference(seconds: int = 10, *, slicing: bool = True, binary: bool = False) -> Interference:
    """(b): a fresh one-worker server on the repository's models, wrk with one-row
    ``mlp`` requests from 16 connections alone, then beside one client that keeps
    sending the largest JSON request the server accepts (its rows as binary data with
    ``binary``)."""
    limit = Settings().max_request_body_bytes
    large = largest_body(limit)
    header_length = None
    if binary:
        large, header_length = binary_body(orjson.loads(large)["inputs"][0]["shape"][0])
    env = {**enable_auth(), "TENSORGATE_ACCESS_LOG": "false"}
    env["TENSORGATE_JSON_SLICING"] = "true" if slicing else "false"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        small = work / "one-row.json"
        small.write_bytes(protocol_body(random_rows(1, seed=1)))
        command = tensorgate(REPOSITORY, 1)
        with running(command, "/v2/health/ready", work / "server.log", env) as server:
            url = f"{server.base}/v2/models/mlp/infer"
            run_wrk(url, small, 16, 2, work, send_token=True)  # warm-up
            alone = run_wrk(url, small, 16, seconds, work, send_token=True)
            with _LargeSender(url, large, header_length) as sender:
                during = run_wrk(url, small, 16, seconds, work, send_token=True)
            answered = sender.latencies_ms
            if sender.failures:
                raise RuntimeError(f"{sender.failures} large requests failed; see the log")
    return Interference(
        slicing,
        "binary" if binary else "json",
        len(large),
        alone,
        during,
        len(answered),
        statistics.median(answered) if answered else float("nan"),
    )


def main() -> None:
    """Print (a), and (b) with slicing on and off, and with binary large requests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of (a)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--skip-server", action="store_true", help="only (a)")
    args = parser.parse_args()
    print(orjson.dumps(asdict(decode_cost(args.rounds))).decode())
    if not args.skip_server:
        for slicing, binary in ((True, False), (False, False), (True, True)):
            figures = interference(args.seconds, slicing=slicing, binary=binary)
            print(orjson.dumps(asdict(figures)).decode())


if __name__ == "__main__":
    main()
