"""Reading h2load: its summary, the percentiles of its per-request log, and the gRPC
message prefix of the body it posts."""

from __future__ import annotations

import struct

import pytest

from h2load import H2loadCounts, H2loadResult, grpc_frame, parse, percentiles

# h2load 1.52 (Debian 12), a 2 s run of -c64 -m1 with 40 calls in flight at its end.
OUTPUT = """\
starting benchmark...
spawning thread #0: 64 total client(s). Timing-based test with 0s of warm-up time and 2s of \
main duration for measurements.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.01s, 804.00 req/s, 111.26KB/s
requests: 1650 total, 1650 started, 1610 done, 1610 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1608 2xx, 0 3xx, 2 4xx, 0 5xx
traffic: 226.52KB (231955) total, 5.14KB (5262) headers (space savings 96.24%), 126.64KB \
(129675) data
                     min         max         mean         sd        +/- sd
time for request:    20.87ms    308.21ms     78.67ms     40.32ms    90.46%
"""


def test_the_summary() -> None:
    assert parse(OUTPUT) == H2loadCounts(seconds=2.01, started=1650, done=1610, status_2xx=1608)


def test_a_run_shorter_than_a_second() -> None:
    counts = parse(OUTPUT.replace("finished in 2.01s", "finished in 512.5ms"))
    assert counts.seconds == pytest.approx(0.5125)


def test_output_without_a_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="finished in"):
        parse("connect to 127.0.0.1 port 1 failed\n")


def test_answers_per_second_count_every_answer() -> None:
    result = H2loadResult(parse(OUTPUT), 1.0, 2.0)
    assert result.answers_per_s == pytest.approx(1610 / 2.01)


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    log = "".join(f"1796625808913136\t200\t{us}\n" for us in range(1000, 101_000, 1000))
    assert percentiles(log) == (50.0, 99.0)


def test_percentiles_of_one_request_and_of_none() -> None:
    assert percentiles("1796625808913136\t200\t740\n") == (0.74, 0.74)
    assert percentiles("") == (0.0, 0.0)


def test_the_grpc_prefix() -> None:
    frame = grpc_frame(b"\x0a\x03mlp")
    assert frame[:1] == b"\x00"  # not compressed
    assert struct.unpack(">I", frame[1:5]) == (5,)
    assert frame[5:] == b"\x0a\x03mlp"
