"""Drives a gRPC port with Debian's ``h2load`` (nghttp2-client): closed-loop unary calls,
each a POST of one pre-built gRPC message (a 5-byte prefix and the serialised request).

h2load sees HTTP statuses only: a gRPC error is a 200 whose ``grpc-status`` trailer it
never reads, so the caller counts the answers' gRPC statuses elsewhere (grpc_rows.py
reads them from the server's metrics). Its report has no percentiles either: they come
from its per-request log (``--log-file``).
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}
"""What a gRPC call carries besides ``:path`` (the method) and its metadata."""

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass(frozen=True)
class H2loadCounts:
    """The summary of one h2load run."""

    seconds: float
    started: int
    done: int
    """Requests answered (any status) or failed; ``started - done`` were in flight at
    the end of the run and abandoned."""
    status_2xx: int


@dataclass(frozen=True)
class H2loadResult:
    """What one h2load run measured: its summary and the latencies of its log."""

    counts: H2loadCounts
    p50_ms: float
    p99_ms: float

    @property
    def answers_per_s(self) -> float:
        """Requests done per second, errors included (as wrk's Requests/sec)."""
        return self.counts.done / self.counts.seconds if self.counts.seconds else 0.0


def grpc_frame(message: bytes) -> bytes:
    """``message`` as one gRPC length-prefixed message: not compressed, big-endian length
    (the gRPC over HTTP/2 protocol, "Length-Prefixed-Message")."""
    return struct.pack(">BI", 0, len(message)) + message


def _count(pattern: str, output: str) -> int:
    match = re.search(pattern, output)
    if match is None:
        raise ValueError(f"h2load output lacks {pattern!r}")
    return int(match.group(1))


def parse(output: str) -> H2loadCounts:
    """Read the duration, requests started and done, and 2xx answers of h2load's report."""
    finished = re.search(r"finished in ([\d.]+)(us|ms|s),", output)
    if finished is None:
        raise ValueError("h2load output lacks its 'finished in' line")
    return H2loadCounts(
        seconds=float(finished.group(1)) * _UNITS[finished.group(2)],
        started=_count(r"requests: \d+ total, (\d+) started", output),
        done=_count(r"requests: \d+ total, \d+ started, (\d+) done", output),
        status_2xx=_count(r"status codes: (\d+) 2xx", output),
    )


def percentiles(log: str) -> tuple[float, float]:
    """p50 and p99 in ms (nearest rank) of h2load's ``--log-file``: a line per request,
    tab-separated: start time (µs since the epoch), HTTP status, µs to its end."""
    times = sorted(int(line.split("\t")[2]) for line in log.splitlines() if line.strip())
    if not times:
        return 0.0, 0.0

    def rank(q: float) -> float:
        return times[max(0, math.ceil(len(times) * q / 100) - 1)] / 1e3

    return rank(50), rank(99)


def run_h2load(
    url: str,
    body: Path,
    connections: int,
    seconds: float,
    workdir: Path,
    headers: Mapping[str, str],
) -> H2loadResult:
    """One h2load run of ``seconds``: ``connections`` HTTP/2 connections with one call in
    flight on each (``-m 1``, as wrk's one request per connection), one thread as wrk
    has up to 64 connections."""
    log = workdir / f"h2load-{body.name}-{connections}.tsv"
    command = ["h2load", "-t1", f"-c{connections}", "-m1", f"-D{seconds:g}", "-d", str(body)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += [f"--log-file={log}", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    p50, p99 = percentiles(log.read_text())
    log.unlink()
    return H2loadResult(parse(output), p50, p99)
