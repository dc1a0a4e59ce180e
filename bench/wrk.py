"""Drives a server with Debian's ``wrk`` and a Lua script that posts one body (JSON unless
other headers are given)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LUA = """\
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
{headers}local token = os.getenv("BENCH_BEARER_TOKEN")
if token ~= nil and token ~= "" and {send_token} then
  wrk.headers["Authorization"] = "Bearer " .. token
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    """Read requests/s, p50, p99 and errors (non-2xx plus socket errors) from wrk's report."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _millis(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _millis(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    return WrkResult(rate, p50, p99, errors, total)


def run_wrk(
    url: str,
    body: Path,
    connections: int,
    seconds: float,
    workdir: Path,
    *,
    send_token: bool,
    headers: Mapping[str, str] | None = None,
) -> WrkResult:
    """One wrk run: one thread per 64 connections (at most 2), ``seconds`` long."""
    script = workdir / f"post-{body.name}-{int(send_token)}.lua"
    sent = headers if headers is not None else {"Content-Type": "application/json"}
    header_lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in sent.items())
    script.write_text(
        LUA.format(body=body, headers=header_lines, send_token="true" if send_token else "false")
    )
    threads = max(1, min(2, connections // 64))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse(output)
