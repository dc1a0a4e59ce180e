"""The large JSON rows of ``make bench`` (issue 18): the largest JSON request tensorgate
takes, ``mlp`` rows up to ``LARGE_BODY_BYTES``.

- Decode: tensorgate's request codec as the inference route calls it for a body this
  large (``PROTOCOL_JSON.decode_large``, in slices that give the event loop back, with
  ``mlp``'s signature and row limit and the default slice size) against the floor of
  ``orjson.loads`` then ``np.asarray(..., float32)`` of the data, in this process, taking
  turns every round.
- Stall: one-row ``mlp`` requests from wrk at ``SMALL_CONNECTIONS`` to a real server,
  alone and while one more client keeps sending the large body (a thread here, one
  keep-alive connection, the next request as soon as an answer is read), in turns.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from alternating import alternating
from backends.base import ModelSignature, RuntimeOptions
from backends.onnxruntime import OnnxRuntimeBackend
from gateway.batching.policy import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE
from gateway.dataplane.codecs import PROTOCOL_JSON, DecodingRules, Slicing
from gateway.settings import Settings
from progress import Progress
from results import LARGE_ALONE, LARGE_DURING, LargeJson
from servers import HOST, Server
from wrk import WrkResult, run_wrk

LARGE_BODY_BYTES = 15_500_000
"""Just under the default 16 MiB request body limit (``max_request_body_bytes``)."""
SMALL_CONNECTIONS = 16
MLP_WIDTH = 256
HEADERS = {"content-type": "application/json"}


def write_large_body(path: Path) -> int:
    """Write as many ``mlp`` rows (six decimal digits a number, one flat ``data`` list, as
    clients send it) as fit in ``LARGE_BODY_BYTES``; returns the number of rows."""
    head = b'{"inputs":[{"name":"input","shape":[%d,%d],"datatype":"FP32","data":['
    tail = b"]}]}"
    rng = np.random.default_rng(18)
    rows: list[bytes] = []
    size = len(head % (99999, MLP_WIDTH)) + len(tail)
    while True:
        numbers = rng.uniform(0, 1, MLP_WIDTH).round(6).tolist()
        text = orjson.dumps(numbers)[1:-1].replace(b",", b", ")
        if size + len(text) + 2 > LARGE_BODY_BYTES:
            break
        rows.append(text)
        size += len(text) + 2
    path.write_bytes(head % (len(rows), MLP_WIDTH) + b", ".join(rows) + tail)
    return len(rows)


def mlp_signature(model: Path) -> ModelSignature:
    """``mlp``'s signature as the gateway reads it from the model."""
    backend = OnnxRuntimeBackend.load(model, RuntimeOptions(intra_op_threads=1), "mlp")
    signature = backend.signature
    asyncio.run(backend.close())
    return signature


def decode_times(body: bytes, rows: int, model: Path, rounds: int) -> tuple[float, float]:
    """Median milliseconds of (the orjson + numpy floor, tensorgate's codec) on ``body``
    of ``rows`` rows, the two taking turns (after one untimed run each)."""
    shape = (rows, MLP_WIDTH)
    # mlp's shipped config keeps the default batch and queue sizes: its row limit.
    rules = DecodingRules(
        mlp_signature(model), max_rows=DEFAULT_MAX_BATCH_SIZE * DEFAULT_MAX_QUEUE_SIZE
    )

    def floor() -> object:
        data = orjson.loads(body)["inputs"][0]["data"]
        return np.asarray(data, dtype=np.float32).reshape(shape)

    slicing = Slicing(Settings().json_slice_bytes, lambda: False)
    loop = asyncio.new_event_loop()

    def codec() -> object:
        decode = PROTOCOL_JSON.decode_large(body, HEADERS, rules, slicing)
        return loop.run_until_complete(decode).inputs

    timings: dict[Callable[[], object], list[float]] = {floor: [], codec: []}
    try:
        for run in timings:
            run()
        for _ in range(rounds):
            for run, times in timings.items():
                started = time.perf_counter()
                run()
                times.append((time.perf_counter() - started) * 1000)
    finally:
        loop.close()
    return statistics.median(timings[floor]), statistics.median(timings[codec])


class LargeSender:
    """A thread sending the large body to ``mlp`` on one keep-alive connection, again as
    soon as each answer is read, until stopped."""

    def __init__(self, server: Server, body: bytes) -> None:
        self._port = server.port
        self._body = body
        self._headers = {"Content-Type": "application/json"}
        if token := os.environ.get("BENCH_BEARER_TOKEN"):
            self._headers["Authorization"] = f"Bearer {token}"
        self._stop = threading.Event()
        self._answered = threading.Event()
        self._thread = threading.Thread(target=self._send, name="large-json", daemon=True)
        self.statuses: list[int] = []
        self.durations_ms: list[float] = []

    def __enter__(self) -> LargeSender:
        self._thread.start()
        # The stream is under way once one large request has been answered.
        self._answered.wait(timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _send(self) -> None:
        connection = http.client.HTTPConnection(HOST, self._port, timeout=60)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                connection.request("POST", "/v2/models/mlp/infer", self._body, self._headers)
                answer = connection.getresponse()
                answer.read()
                if self._answered.is_set():  # the first one warms up, outside the window
                    self.statuses.append(answer.status)
                    self.durations_ms.append((time.perf_counter() - started) * 1000)
                self._answered.set()
        finally:
            self._answered.set()
            connection.close()


def large_json_rows(
    server: Server,
    small_body: Path,
    model: Path,
    work: Path,
    seconds: int,
    rounds: int,
    progress: Progress,
) -> LargeJson:
    """Decode against the floor, and one-row p99 alone against beside large requests."""
    large_path = work / "mlp-large.json"
    rows = write_large_body(large_path)
    body = large_path.read_bytes()
    progress.step("large JSON decode")
    floor_ms, decode_ms = decode_times(body, rows, model, rounds)
    progress.finish("large JSON decode")
    url = f"{server.base}/v2/models/mlp/infer"
    statuses: list[int] = []
    durations: list[float] = []

    def alone() -> WrkResult:
        return run_wrk(url, small_body, SMALL_CONNECTIONS, seconds, work, send_token=True)

    def during() -> WrkResult:
        with LargeSender(server, body) as sender:
            result = alone()
        statuses.extend(sender.statuses)
        durations.extend(sender.durations_ms)
        return result

    small = alternating(
        {LARGE_ALONE: alone, LARGE_DURING: during}, "mlp", SMALL_CONNECTIONS, rounds, progress
    )
    return LargeJson(
        body_bytes=len(body),
        rows=rows,
        rounds=rounds,
        floor_ms=floor_ms,
        decode_ms=decode_ms,
        alone=small[0],
        during=small[1],
        large_answered=len(statuses),
        large_ok=statuses.count(200),
        large_p50_ms=statistics.median(durations) if durations else float("nan"),
    )


def run_count(rounds: int) -> int:
    """Progress steps ``large_json_rows`` takes."""
    return 1 + 2 * rounds
